-- A full-text term over name, title, description and tags, 20 a page.
math.randomseed(42)
local words = {"payments", "ledger", "search", "billing", "checkout", "identity", "inventory", "shipping"}
request = function()
  local term
  if math.random() < 0.5 then
    term = words[math.random(1, #words)]
  else
    term = string.format("svc-%03d", math.random(0, 199))
  end
  return wrk.format("GET", "/api/catalog/entities/by-query?fullTextFilterTerm=" .. term .. "&limit=20")
end
