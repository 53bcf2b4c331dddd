-- POST one check-in, the author and team rotating over the seeded teams and their
-- members (team k has members p-((k-1)*M+1) .. p-(k*M), wrapping over the actors).
local teams = tonumber(os.getenv("BENCH_TEAMS"))
local members = tonumber(os.getenv("BENCH_MEMBERS"))
local actors = tonumber(os.getenv("BENCH_ACTORS"))
local path = os.getenv("BENCH_PATH")
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

request = function()
  counter = counter + 1
  local team = counter % teams + 1
  local actor = ((team - 1) * members + counter % members) % actors + 1
  local body = string.format(
    '{"actor_id":"p-%d","team_id":"t-%d","date":"2026-07-01",' ..
    '"previously":["Closed the onboarding ticket","Paired on the importer"],' ..
    '"next":["Ship the importer","Review the API draft"],"blockers":["Waiting on staging access"]}',
    actor, team)
  return wrk.format("POST", path, headers, body)
end
