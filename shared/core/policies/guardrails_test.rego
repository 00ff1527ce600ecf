# Tests of the default guardrails; `cargo test -p paved-core` runs every test_ rule.
package paved.guardrails_test

import rego.v1

import data.paved.guardrails

ok_request := {
	"request": {
		"template": "postgres-database", "name": "orders-db", "owner": "group:default/team-a",
		"environment": "staging", "parameters": {"storage_gb": 10}, "requester": "user:default/alice",
	},
	"template": {"name": "postgres-database", "environments": ["development", "staging", "production"]},
	"usage": {"team_active_resources": 1},
}

rules(input_value) := {v.rule | some v in guardrails.deny with input as input_value}

test_a_good_request_passes if {
	count(guardrails.deny) == 0 with input as ok_request
	not guardrails.needs_approval with input as ok_request
}

test_names_follow_the_convention if {
	"naming.pattern" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/name", "value": "Orders_DB"}]))
	"naming.pattern" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/name", "value": "db-"}]))
	"naming.pattern" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/name", "value": "ab"}]))
}

test_unknown_environments_are_refused if {
	"environment.known" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/environment", "value": "moon"}]))
}

test_templates_limit_their_environments if {
	r := json.patch(ok_request, [
		{"op": "replace", "path": "/template/environments", "value": ["development"]},
	])
	"environment.allowed" in rules(r)
}

test_team_quota if {
	"quota.team" in rules(json.patch(ok_request, [{"op": "replace", "path": "/usage/team_active_resources", "value": 25}]))
	not "quota.team" in rules(json.patch(ok_request, [{"op": "replace", "path": "/usage/team_active_resources", "value": 24}]))
}

test_size_limits if {
	"size.limit" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/parameters/storage_gb", "value": 101}]))
	not "size.limit" in rules(json.patch(ok_request, [{"op": "replace", "path": "/request/parameters/storage_gb", "value": 100}]))
}

test_production_needs_an_approver_who_is_not_the_requester if {
	prod := json.patch(ok_request, [{"op": "replace", "path": "/request/environment", "value": "production"}])
	guardrails.needs_approval with input as prod

	by_self := object.union(prod, {"approver": {"user": "user:default/alice", "groups": ["group:default/platform-approvers"]}})
	{v.rule | some v in guardrails.approval_deny with input as by_self} == {"approval.not-requester"}

	outsider := object.union(prod, {"approver": {"user": "user:default/bob", "groups": ["group:default/team-b"]}})
	{v.rule | some v in guardrails.approval_deny with input as outsider} == {"approval.group"}

	approver := object.union(prod, {"approver": {"user": "user:default/bob", "groups": ["group:default/platform-approvers"]}})
	count(guardrails.approval_deny) == 0 with input as approver
}

test_the_requester_is_the_requester_however_it_is_spelled if {
	prod := json.patch(ok_request, [{"op": "replace", "path": "/request/environment", "value": "production"}])
	by_self := object.union(prod, {"approver": {"user": "user:default/Alice", "groups": ["group:default/Platform-Approvers"]}})
	{v.rule | some v in guardrails.approval_deny with input as by_self} == {"approval.not-requester"}
}
