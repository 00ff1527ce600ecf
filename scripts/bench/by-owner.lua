-- Components of a random owner, 50 a page.
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/catalog/entities/by-query?filter=kind=component,spec.owner=team-%04d&limit=50", math.random(0, 199)))
end
