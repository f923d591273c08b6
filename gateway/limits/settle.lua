-- Settlement of one request once its real usage is known (after the response).
-- Each token bucket gets the difference between the real tokens and what it reserved (a
-- refund when negative; buckets cap their reservations at their own limits); each budget's reservation becomes the real cost, pending until the worker
-- lands the record. A reservation the worker already released (its record landed first)
-- is left alone, so settling and landing commute.
--
-- KEYS: nt token bucket keys, then ng budget keys.
-- ARGV: nt, ng, request id, real tokens, cost (nano-dollars), then per bucket: limit, reserved.
local nt, ng, rid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local used, cost = tonumber(ARGV[4]), ARGV[5]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local WINDOW = 60000

for i = 1, nt do
  local limit, delta = tonumber(ARGV[4 + 2 * i]), used - tonumber(ARGV[5 + 2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  local new_tat = math.max(tat + delta * WINDOW / limit, now)
  if new_tat > now then
    redis.call('SET', KEYS[i], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  else
    redis.call('DEL', KEYS[i])
  end
end

for j = 1, ng do
  local key = KEYS[nt + j]
  local held = redis.call('HGET', key, 'r:' .. rid)
  if held then
    redis.call('HDEL', key, 'r:' .. rid)
    redis.call('HINCRBY', key, 'reserved', '-' .. held)
    if tonumber(cost) > 0 then
      redis.call('HSET', key, 'p:' .. rid, cost)
      redis.call('HINCRBY', key, 'pending', cost)
    end
  end
end
return 1
