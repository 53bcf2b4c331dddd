-- GET a path with a rotating number: BENCH_PATH is a format string with one %d,
-- filled with 1..BENCH_ROTATE in turn (e.g. /actors?id=eq.p-%d over 500 actors).
local template = os.getenv("BENCH_PATH")
local rotate = tonumber(os.getenv("BENCH_ROTATE") or "1")
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("GET", string.format(template, (counter % rotate) + 1))
end
