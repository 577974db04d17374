-- Mask secrets passed in the query string of `uri` (and `referer`).
--
-- [FILTER]
--     Name    lua
--     Match   kube.*
--     script  mask-query-tokens.lua
--     call    mask_query_tokens
--
-- The value of every query parameter whose name (case-insensitive) is in
-- the list below becomes `***`:  /cb?code=abc&state=x -> /cb?code=***&state=x
-- Records without such a parameter are kept unchanged (code 0).

local secret_names = {
  token = true, access_token = true, refresh_token = true, id_token = true,
  api_key = true, apikey = true, key = true, password = true, passwd = true,
  secret = true, client_secret = true, code = true, signature = true,
  sig = true, auth = true, session = true, sessionid = true,
  ["x-amz-signature"] = true, ["x-amz-credential"] = true,
  ["x-amz-security-token"] = true,
}

local function mask(url)
  if type(url) ~= "string" then
    return url, false
  end
  local path, query, fragment = url:match("^([^?#]*)%?([^#]*)(.*)$")
  if not query then
    return url, false
  end
  local changed = false
  local masked = query:gsub("([^&=]+)=([^&]*)", function(name, value)
    if secret_names[name:lower()] and value ~= "" then
      changed = true
      return name .. "=***"
    end
  end)
  if not changed then
    return url, false
  end
  return path .. "?" .. masked .. fragment, true
end

function mask_query_tokens(tag, timestamp, record)
  local uri, uri_changed = mask(record["uri"])
  local referer, referer_changed = mask(record["referer"])
  if not (uri_changed or referer_changed) then
    return 0, timestamp, record
  end
  record["uri"] = uri
  record["referer"] = referer
  return 2, timestamp, record
end
