-- The worker, after committing a batch: for one budget, the records that landed leave
-- `reserved`/`pending` (their cost is now in the database), and `spent` becomes the database's
-- sum for the period. The sum only grows within a period, so `spent` only moves up: an older
-- sum computed by a slower worker cannot undo a newer one.
--
-- KEYS[1]: a budget key. ARGV: the period's spent amount in the database (nano-dollars), then
-- the request ids of the batch. A budget nobody loaded yet is left alone.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return 0
end
for i = 2, #ARGV do
  local held = redis.call('HGET', key, 'r:' .. ARGV[i])
  if held then
    redis.call('HDEL', key, 'r:' .. ARGV[i])
    redis.call('HINCRBY', key, 'reserved', '-' .. held)
  end
  local pending = redis.call('HGET', key, 'p:' .. ARGV[i])
  if pending then
    redis.call('HDEL', key, 'p:' .. ARGV[i])
    redis.call('HINCRBY', key, 'pending', '-' .. pending)
  end
end
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', key, 'spent') or '0') then
  redis.call('HSET', key, 'spent', ARGV[1])
end
return 1
