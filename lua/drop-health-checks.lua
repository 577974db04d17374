-- Drop access-log records of health and readiness probes.
--
-- [FILTER]
--     Name    lua
--     Match   kube.*
--     script  drop-health-checks.lua
--     call    drop_health_checks
--
-- A record is dropped when its `uri` path (query string ignored) is one of
-- the paths below, or when its user agent is a known probe
-- (kube-probe/..., ELB-HealthChecker/...). Everything else passes unchanged.

local health_paths = {
  ["/healthz"] = true,
  ["/health"] = true,
  ["/healthcheck"] = true,
  ["/ready"] = true,
  ["/readyz"] = true,
  ["/livez"] = true,
  ["/ping"] = true,
}

local probe_agents = { "^kube%-probe/", "^ELB%-HealthChecker/", "^GoogleHC/" }

function drop_health_checks(tag, timestamp, record)
  local uri = record["uri"]
  if type(uri) == "string" then
    local path = uri:match("^[^?#]*")
    if health_paths[path] or health_paths[path:gsub("/+$", "")] then
      return -1, timestamp, record
    end
  end
  local agent = record["user_agent"]
  if type(agent) == "string" then
    for _, pattern in ipairs(probe_agents) do
      if agent:find(pattern) then
        return -1, timestamp, record
      end
    end
  end
  return 0, timestamp, record
end
