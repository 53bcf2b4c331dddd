-- POST the same body (read once from BENCH_BODY_FILE) to BENCH_PATH.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
