# A custom rule, conftest style: every message in `deny` is a violation.
# The input document is described in docs/policy.md ("Custom rules").
package main

import rego.v1

# A client account's `client` tag names the client its name is for.
deny contains violation if {
	some account in input.accounts
	account.account_type == "client"
	slug := trim_prefix(account.name, "client-")
	account.tags.client != slug
	violation := {
		"msg": sprintf("client account `%s` is tagged for client `%s`", [account.name, account.tags.client]),
		"module": account.key,
		"fix": sprintf("set the tag client = \"%s\"", [slug]),
	}
}
