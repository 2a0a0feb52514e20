-- secdownload for lighttpd >= 1.4.68 (mod_magnet), in front of mp4-fcgi.
-- URL: /dl/<token>/<hex-time>/<path>?start=30  with
--   token = md5hex(secret .. path .. hex-time), hex-time = Unix time in hex.
-- A bad token answers 403, a link older than `timeout` 410; a good one is
-- rewritten to /<path>?<query> and handled as if asked for directly.
-- For your site: change `secret` (and `timeout`, in seconds).
local secret = "change-this-secret"
local timeout = 3600

local r = lighty.r
local uri = r.req_attr["request.uri"]
local path, query = uri:match("^([^?]*)%??(.*)$")
local token, hextime, rel = path:match("^/dl/(%x+)/(%x+)(/.+)$")
if not token then
  return 403
end
local want = lighty.c.md("md5", secret .. rel .. hextime):lower()
if not lighty.c.secret_eq(token:lower(), want) then
  return 403
end
local age = lighty.c.time() - tonumber(hextime, 16)
if age > timeout or age < -timeout then
  return 410
end
r.req_attr["request.uri"] = rel .. (query ~= "" and ("?" .. query) or "")
return lighty.RESTART_REQUEST
