# paved's default guardrails: what may be requested. Who may act is authorization, in Rust.
#
# Input (one self-service request):
#   request:  {template, name, owner, environment, parameters, requester}
#   template: {name, environments}        the golden path's own settings
#   usage:    {team_active_resources}     what the owning team already has
#   approver: {user, groups}              only when an approval is being checked
# Data: data.paved.config (config.json beside this file, or a platform team's own).
#
# Every violation is {"rule": <stable id>, "message": <text for a person>}.
package paved.guardrails

import rego.v1

config := data.paved.config

default needs_approval := false

# Production needs a second pair of eyes.
needs_approval if input.request.environment in config.approval_environments

deny contains {"rule": "naming.pattern", "message": msg} if {
	not regex.match(config.name_pattern, input.request.name)
	msg := sprintf("name %q must be 3-40 lower-case letters, digits and dashes, starting with a letter and not ending with a dash", [input.request.name])
}

deny contains {"rule": "environment.known", "message": msg} if {
	not input.request.environment in config.environments
	msg := sprintf("environment %q is not one of %s", [input.request.environment, concat(", ", config.environments)])
}

deny contains {"rule": "environment.allowed", "message": msg} if {
	allowed := object.get(input.template, "environments", [])
	count(allowed) > 0
	input.request.environment in config.environments
	not input.request.environment in allowed
	msg := sprintf("template %s may not be used in %s; it allows %s", [input.template.name, input.request.environment, concat(", ", allowed)])
}

deny contains {"rule": "quota.team", "message": msg} if {
	input.usage.team_active_resources >= config.quota_per_team
	msg := sprintf("%s already has %d resources, the quota per team", [input.request.owner, config.quota_per_team])
}

deny contains {"rule": "size.limit", "message": msg} if {
	some parameter, limit in object.get(config.size_limits, input.request.template, {})
	value := input.request.parameters[parameter]
	is_number(value)
	value > limit
	msg := sprintf("%s is %v; %s allows at most %v", [parameter, value, input.request.template, limit])
}

# Entity refs are compared case-insensitively, as Backstage compares them (paved passes them
# canonical, lower-case; a platform team's config may spell the group otherwise).
approval_deny contains {"rule": "approval.group", "message": msg} if {
	not approver_in_group
	msg := sprintf("approvals need a member of %s", [config.approver_group])
}

approver_in_group if {
	some group in input.approver.groups
	lower(group) == lower(config.approver_group)
}

approval_deny contains {"rule": "approval.not-requester", "message": "the requester cannot approve their own request"} if {
	lower(input.approver.user) == lower(input.request.requester)
}
