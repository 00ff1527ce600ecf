// Drives a running paved with Backstage's published catalog client, unchanged.
// PAVED_URL and PAVED_TOKEN say where and as whom; the catalog holds
// scripts/gen_catalog.py --components 60 --groups 3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CatalogClient } from '@backstage/catalog-client';

const base = process.env.PAVED_URL;
const token = process.env.PAVED_TOKEN;
assert.ok(base && token, 'set PAVED_URL and PAVED_TOKEN');

const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
});
const auth = { token };

test('getEntityByRef returns an entity with its relations, undefined when missing', async () => {
  const e = await client.getEntityByRef('component:default/svc-00001', auth);
  assert.equal(e.metadata.name, 'svc-00001');
  assert.ok(e.metadata.uid);
  assert.ok(e.relations.some(r => r.type === 'ownedBy' && r.targetRef === 'group:default/team-0001'));
  assert.equal(await client.getEntityByRef('component:default/nope', auth), undefined);
  const group = await client.getEntityByRef({ kind: 'Group', namespace: 'default', name: 'team-0001' }, auth);
  assert.equal(group.relations.filter(r => r.type === 'ownerOf').length, 20);
});

test('queryEntities filters, orders and pages with cursors', async () => {
  const first = await client.queryEntities({
    filter: { kind: 'Component', 'spec.owner': 'team-0001' },
    orderFields: { field: 'metadata.name', order: 'desc' },
    fields: ['metadata.name'],
    limit: 7,
  }, auth);
  assert.equal(first.totalItems, 20);
  assert.equal(first.items.length, 7);
  assert.deepEqual(Object.keys(first.items[0]), ['metadata']);
  const names = first.items.map(e => e.metadata.name);
  let cursor = first.pageInfo.nextCursor;
  while (cursor) {
    const page = await client.queryEntities({ cursor, limit: 7, fields: ['metadata.name'] }, auth);
    names.push(...page.items.map(e => e.metadata.name));
    cursor = page.pageInfo.nextCursor;
  }
  assert.equal(names.length, 20);
  assert.deepEqual(names, [...names].sort().reverse());
});

test('queryEntities full text and OR filters', async () => {
  const byName = await client.queryEntities({
    fullTextFilter: { term: 'SVC-0005', fields: ['metadata.name'] },
  }, auth);
  assert.equal(byName.totalItems, 10);
  const either = await client.queryEntities({
    filter: [{ kind: 'Group', 'metadata.name': 'team-0000' }, { kind: 'Group', 'metadata.name': 'team-0002' }],
  }, auth);
  assert.deepEqual(either.items.map(e => e.metadata.name).sort(), ['team-0000', 'team-0002']);
});

test('streamEntities walks everything', async () => {
  let count = 0;
  for await (const page of client.streamEntities({ filter: { kind: 'Component' }, pageSize: 25 }, auth)) {
    count += page.length;
  }
  assert.equal(count, 60);
});

test('getEntities, getEntitiesByRefs and getEntityFacets', async () => {
  const groups = await client.getEntities({ filter: { kind: 'Group' }, fields: ['metadata.name'] }, auth);
  assert.deepEqual(groups.items.map(e => e.metadata.name).sort(), ['team-0000', 'team-0001', 'team-0002']);

  const byRefs = await client.getEntitiesByRefs({
    entityRefs: ['component:default/svc-00003', 'component:default/missing'],
    fields: ['metadata.name', 'spec.owner'],
  }, auth);
  assert.deepEqual(byRefs.items, [{ metadata: { name: 'svc-00003' }, spec: { owner: 'team-0000' } }, undefined]);

  const facets = await client.getEntityFacets({ facets: ['spec.owner', 'kind'], filter: { kind: 'Component' } }, auth);
  assert.deepEqual(facets.facets['spec.owner'].map(f => f.count), [20, 20, 20]);
  assert.deepEqual(facets.facets.kind, [{ value: 'Component', count: 60 }]);
});

test('removeEntityByUid deletes', async () => {
  const e = await client.getEntityByRef('component:default/svc-00059', auth);
  await client.removeEntityByUid(e.metadata.uid, auth);
  assert.equal(await client.getEntityByRef('component:default/svc-00059', auth), undefined);
});

test('errors surface as ResponseError with the status', async () => {
  await assert.rejects(
    client.queryEntities({ filter: { kind: 'Component' } }, { token: 'not-a-token' }),
    err => err.name === 'ResponseError' && err.statusCode === 401,
  );
});
