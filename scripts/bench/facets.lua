-- Facet counts of spec.owner over the components.
request = function()
  return wrk.format("GET", "/api/catalog/entity-facets?facet=spec.owner&filter=kind=component")
end
