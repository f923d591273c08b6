-- A gateway found a budget not loaded (new period, or Redis lost it): start it from the
-- database's sum. HSETNX: whoever loaded it first (or a worker's newer sum) wins.
-- KEYS[1]: the budget key. ARGV: spent (nano-dollars), ttl ms.
redis.call('HSETNX', KEYS[1], 'spent', ARGV[1])
redis.call('HSETNX', KEYS[1], 'reserved', 0)
redis.call('HSETNX', KEYS[1], 'pending', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
