-- secdownload for lighttpd >= 1.4.68 (mod_magnet), in front of mp4-fcgi.
-- lighttpd.conf runs it for every URL under /dl/ and /protected/, in any case.
-- A link /dl/<token>/<hex-time><path>?start=30 serves the file <folder><path>:
--   <path>      the film's path inside the protected folder, starting with "/":
--               /film.mp4 for /srv/videos/protected/film.mp4, optionally followed
--               by the name of one of its HLS/DASH outputs:
--               /film.mp4/master.m3u8, /film.mp4/manifest.mpd, and what those
--               name: index-1.m3u8, init-1.mp4, seg-1-1.m4s (index-f1-1.m3u8, ...),
--               subs-3.m3u8, subs-1-3.vtt, subs-3.vtt, iframes-1.m3u8, key-1-1.m4s,
--               encryption.key, thumb-5500.jpg (-w160, -h90, -w160-h90 before
--               .jpg), tiles-1.jpg, images.m3u8, thumbnails.vtt.
--               Hashed as lighttpd decodes it: a space is %20 in the link, a
--               space in the token.
--   <hex-time>  the link's CREATION time: Unix time in seconds, 8 lower-case hex
--               digits (printf %08x "$(date +%s)"). The link opens from
--               hex-time - timeout until hex-time + timeout; after that, 410.
--   <token>     md5hex(secret .. film .. hex-time), 32 lower-case hex digits, where
--               film is <path> without the output's name (mod_secdownload's
--               path-segments, counted from the end): one token covers the film and
--               every output under it. Playlists name their segments by relative
--               URLs, so a player asks them under the same /dl/<token>/<hex-time>/,
--               each checked again: `timeout` must cover the viewing.
-- links/lighttpd-link.sh and links/lighttpd_link.py make such links.
-- A bad token or anything else here (/protected/film.mp4 asked for directly, by any
-- spelling) answers 403, an old link 410, before the pool sees the request.
-- For your site: change `secret` (and `timeout`, in seconds; `folder` together
-- with the /protected in lighttpd.conf).
local secret = "change-this-secret"
local timeout = 3600
local folder = "/protected"

-- The names of a film's outputs (mp4-fcgi's PATH_INFO), and the films that have them.
local outputs = {
  "^/master%.m3u8$", "^/manifest%.mpd$",
  "^/index%-%d+%.m3u8$", "^/index%-f%d+%-%d+%.m3u8$",
  "^/init%-%d+%.mp4$", "^/init%-f%d+%-%d+%.mp4$",
  "^/seg%-%d+%-%d+%.m4s$", "^/seg%-%d+%-f%d+%-%d+%.m4s$",
  "^/subs%-%d+%.m3u8$", "^/subs%-f%d+%-%d+%.m3u8$",
  "^/subs%-%d+%.vtt$", "^/subs%-f%d+%-%d+%.vtt$",
  "^/subs%-%d+%-%d+%.vtt$", "^/subs%-%d+%-f%d+%-%d+%.vtt$",
  "^/iframes%-%d+%.m3u8$", "^/iframes%-f%d+%-%d+%.m3u8$",
  "^/key%-%d+%-%d+%.m4s$", "^/key%-%d+%-f%d+%-%d+%.m4s$",
  "^/encryption%.key$",
  "^/thumb%-%d+%.jpg$", "^/thumb%-%d+%-w%d+%.jpg$",
  "^/thumb%-%d+%-h%d+%.jpg$", "^/thumb%-%d+%-w%d+%-h%d+%.jpg$",
  "^/tiles%-%d+%.jpg$", "^/images%.m3u8$", "^/thumbnails%.vtt$",
}
local films = { "%.mp4$", "%.m4v$", "%.m4a$", "%.mov$" }

local function any(s, patterns)
  for _, p in ipairs(patterns) do
    if s:find(p) then
      return true
    end
  end
  return false
end

-- The part of `rel` the token covers: without its last segment if that names an
-- output of the film before it.
local function film_of(rel)
  local film, output = rel:match("^(.+)(/[^/]+)$")
  if film and any(output, outputs) and any(film, films) then
    return film
  end
  return rel
end

local r = lighty.r
-- uri.path: lighttpd has decoded %XX and removed "//", "." and ".." already.
local path = r.req_attr["uri.path"]
local token, hextime, rel =
  path:match("^/dl/(" .. ("%x"):rep(32) .. ")/(" .. ("%x"):rep(8) .. ")(/.+)$")
if not token then
  return 403
end
local want = lighty.c.md("md5", secret .. film_of(rel) .. hextime):lower()
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
