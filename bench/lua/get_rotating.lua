-- GET a path with a rotating number: BENCH_PATH is a format string with one %d,
-- filled with 1..BENCH_ROTATE in turn (e.g. /actors?id=eq.p-%d over 500 actors).
-- BENCH_AUTHORIZATION, when set, is sent as the Authorization header of every request
-- (from the environment rather than `wrk -H`, so the token stays off the command line).
local template = os.getenv("BENCH_PATH")
local rotate = tonumber(os.getenv("BENCH_ROTATE") or "1")
local authorization = os.getenv("BENCH_AUTHORIZATION")
local counter = 0

if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

request = function()
  counter = counter + 1
  return wrk.format("GET", string.format(template, (counter % rotate) + 1))
end
