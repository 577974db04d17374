-- Add fixed fields to every record, e.g. the cluster name.
--
-- [FILTER]
--     Name    lua
--     Match   kube.*
--     script  add-field.lua
--     call    add_field
--
-- `cluster` comes from the CLUSTER_NAME environment variable of the sidecar
-- (read once, when the script loads), "unknown" when it is unset. An
-- existing `cluster` field in the record is left alone.

local cluster = os.getenv("CLUSTER_NAME") or "unknown"

function add_field(tag, timestamp, record)
  if record["cluster"] == nil then
    record["cluster"] = cluster
  end
  return 2, timestamp, record
end
