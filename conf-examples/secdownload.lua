-- secdownload for lighttpd >= 1.4.68 (mod_magnet), in front of mp4-fcgi.
-- lighttpd.conf runs it for every URL under /dl/ and /protected/, in any case.
-- A link /dl/<token>/<hex-time><path>?start=30 serves the file <folder><path>:
--   <path>      the film's path inside the protected folder, starting with "/":
--               /film.mp4 for /srv/videos/protected/film.mp4. Hashed as lighttpd
--               decodes it: a space is %20 in the link, a space in the token.
--   <hex-time>  the link's CREATION time: Unix time in seconds, 8 lower-case hex
--               digits (printf %08x "$(date +%s)"). The link opens from
--               hex-time - timeout until hex-time + timeout; after that, 410.
--   <token>     md5hex(secret .. path .. hex-time), 32 lower-case hex digits.
-- links/lighttpd-link.sh and links/lighttpd_link.py make such links.
-- A bad token or anything else here (/protected/film.mp4 asked for directly, by any
-- spelling) answers 403, an old link 410, before the pool sees the request.
-- For your site: change `secret` (and `timeout`, in seconds; `folder` together
-- with the /protected in lighttpd.conf).
local secret = "change-this-secret"
local timeout = 3600
local folder = "/protected"

local r = lighty.r
-- uri.path: lighttpd has decoded %XX and removed "//", "." and ".." already.
local path = r.req_attr["uri.path"]
local token, hextime, rel =
  path:match("^/dl/(" .. ("%x"):rep(32) .. ")/(" .. ("%x"):rep(8) .. ")(/.+)$")
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
-- Serve the protected file in place. No RESTART_REQUEST: a restarted request
-- would come back here as a direct /protected/ URL and be refused.
r.req_attr["uri.path"] = folder .. rel
