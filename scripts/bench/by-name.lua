-- Random components by name.
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/catalog/entities/by-name/component/default/svc-%05d", math.random(0, 19999)))
end
