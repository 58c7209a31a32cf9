-- uses: window
-- gate_window.lua: the rolling window alone (Redis Cluster: its own slot).
-- KEYS[1] the window; ARGV[1] limit, ARGV[2] window ms, ARGV[3] sub-windows per window.
-- Returns {admitted, remaining, reset_us}.

return count_request(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  redis_now_us())
