-- Admission of one request: every rate bucket and budget that applies, checked and reserved
-- in one atomic step, so N gateway replicas together allow exactly the limits.
--
-- Rate buckets are GCRA token buckets refilling over a 60 s window: the key holds the
-- "theoretical arrival time" (tat, epoch ms) at which the bucket is full again.
-- Budgets are hashes: spent (from the database), reserved (requests in flight, worst case,
-- also one `r:<request id>` field each) and pending (settled, not yet in the database,
-- one `p:<request id>` field each). Amounts are integer nano-dollars.
--
-- KEYS: nb bucket keys, then ng budget keys.
-- ARGV: nb, ng, request id; per bucket: limit, cost; per budget: amount, worst case, ttl ms.
-- Returns {code, index, retry_ms, budget_used, remaining_1, reset_ms_1, ...} where code is
-- 0 admitted, 1 rate limited by bucket `index`, 2 over budget `index` (budget_used is what it
-- already has spent, reserved or pending), 3 budget `index` not loaded yet (nothing changed).
local nb, ng, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local WINDOW = 60000

local code, index, retry, used = 0, 0, 0, 0
local tats, new_tats = {}, {}
for i = 1, nb do
  local limit, cost = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  tats[i] = tat
  new_tats[i] = tat + cost * WINDOW / limit
  if code == 0 and new_tats[i] - now > WINDOW then
    code, index = 1, i
    retry = cost > limit and WINDOW or new_tats[i] - now - WINDOW
  end
end

if code == 0 then
  for j = 1, ng do
    local key, base = KEYS[nb + j], 4 + 2 * nb + 3 * (j - 1)
    local h = redis.call('HMGET', key, 'spent', 'reserved', 'pending')
    if not h[1] then
      code, index = 3, j
      break
    end
    local total = tonumber(h[1]) + tonumber(h[2] or '0') + tonumber(h[3] or '0')
    if total + tonumber(ARGV[base + 1]) > tonumber(ARGV[base]) then
      code, index, used = 2, j, total
      break
    end
  end
end

if code == 0 then
  for i = 1, nb do
    redis.call('SET', KEYS[i], string.format('%.3f', new_tats[i]),
               'PX', math.ceil(new_tats[i] - now) + 1000)
  end
  for j = 1, ng do
    local key, base = KEYS[nb + j], 4 + 2 * nb + 3 * (j - 1)
    local worst = ARGV[base + 1]
    if tonumber(worst) > 0 then
      redis.call('HINCRBY', key, 'reserved', worst)
      redis.call('HSET', key, 'r:' .. rid, worst)
    end
    redis.call('PEXPIRE', key, ARGV[base + 2])
  end
end

local out = {code, index, math.ceil(retry), used}
for i = 1, nb do
  local limit = tonumber(ARGV[2 + 2 * i])
  local tat = code == 0 and new_tats[i] or tats[i]
  local remaining = math.floor((WINDOW - (tat - now)) * limit / WINDOW + 1e-6)
  out[#out + 1] = math.max(0, remaining)
  out[#out + 1] = math.ceil(tat)
end
return out
