//! Okta's JSON shapes, read and written: groups, group rules, the exact-name group search,
//! and error bodies (Okta's `errorCode`/`errorSummary`/`errorCauses`, or OAuth's
//! `error`/`error_description`). Pure: no HTTP here.

use super::http::enc;
use super::{OktaError, OktaGroup, OktaRule};
use anyhow::{Result, bail};
use serde_json::{Value, json};

/// The `search` parameter, URL-encoded, for the group named exactly `name`:
/// `profile.name eq "…"` with `\` and `"` escaped inside the quotes.
pub(crate) fn group_search(name: &str) -> String {
    let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
    enc(&format!("profile.name eq \"{escaped}\""))
}

/// A `group_rule` body for create (no `id`) or replace.
pub(crate) fn rule_body(
    id: Option<&str>,
    name: &str,
    expression: &str,
    group_ids: &[String],
) -> Value {
    let mut body = json!({
        "type": "group_rule",
        "name": name,
        "conditions": {
            "expression": {"type": "urn:okta:expression:1.0", "value": expression}
        },
        "actions": {"assignUserToGroups": {"groupIds": group_ids}}
    });
    if let Some(id) = id {
        body["id"] = Value::String(id.to_string());
    }
    body
}

fn str_field<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn group_from(v: &Value) -> Result<OktaGroup> {
    let (Some(id), Some(name)) = (str_field(v, "/id"), str_field(v, "/profile/name")) else {
        bail!("Okta sent a group without an id or a profile.name");
    };
    Ok(OktaGroup {
        id: id.to_string(),
        name: name.to_string(),
        description: str_field(v, "/profile/description")
            .unwrap_or_default()
            .to_string(),
    })
}

pub(crate) fn rule_from(v: &Value) -> Result<OktaRule> {
    let (Some(id), Some(name)) = (str_field(v, "/id"), str_field(v, "/name")) else {
        bail!("Okta sent a group rule without an id or a name");
    };
    let group_ids: Vec<String> = v
        .pointer("/actions/assignUserToGroups/groupIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(OktaRule {
        id: id.to_string(),
        name: name.to_string(),
        status: str_field(v, "/status").unwrap_or("").to_string(),
        expression: str_field(v, "/conditions/expression/value")
            .unwrap_or("")
            .to_string(),
        group_ids,
    })
}

/// An [`OktaError`] from an answer's body: Okta's `{"errorCode","errorSummary",
/// "errorCauses":[{"errorSummary"}]}`, an OAuth `{"error","error_description"}`, or the
/// start of whatever else it was.
pub(crate) fn parse_error(status: Option<u16>, text: &str) -> OktaError {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let code = str_field(&v, "/errorCode")
        .or_else(|| str_field(&v, "/error"))
        .map(str::to_string);
    let causes: Vec<&str> = v
        .get("errorCauses")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|x| x.get("errorSummary").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let summary = match (
        str_field(&v, "/errorSummary"),
        str_field(&v, "/error_description"),
    ) {
        (Some(s), _) if !causes.is_empty() => format!("{s} ({})", causes.join("; ")),
        (Some(s), _) => s.to_string(),
        (None, Some(d)) if !d.is_empty() => d.to_string(),
        _ => {
            let t: String = text.trim().chars().take(300).collect();
            if t.is_empty() {
                "no details".to_string()
            } else {
                t
            }
        }
    };
    OktaError {
        status,
        code,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::{is_already_exists, is_ambiguous};

    #[test]
    fn the_exact_name_search_is_escaped_and_encoded() {
        assert_eq!(
            group_search("aws#acme#Admin#1"),
            "profile.name%20eq%20%22aws%23acme%23Admin%231%22"
        );
        let raw = |n: &str| urlencoding::decode(&group_search(n)).unwrap().into_owned();
        assert_eq!(raw("a\"b"), "profile.name eq \"a\\\"b\"");
        assert_eq!(raw("a\\b"), "profile.name eq \"a\\\\b\"");
        // an escaped quote does not end the string: `x\" or …` stays inside it
        assert_eq!(
            raw("x\" or profile.name sw \""),
            "profile.name eq \"x\\\" or profile.name sw \\\"\""
        );
        let enc = group_search("a&limit=1+b");
        assert!(
            !enc.contains('&') && !enc.contains('+') && !enc.contains('#'),
            "{enc}"
        );
    }

    #[test]
    fn okta_error_bodies_are_read() {
        let e = parse_error(
            Some(400),
            r#"{"errorCode":"E0000001","errorSummary":"Api validation failed: name","errorLink":"E0000001","errorId":"oae1","errorCauses":[{"errorSummary":"name: An object with this field already exists in the current organization"}]}"#,
        );
        assert_eq!(e.status, Some(400));
        assert_eq!(e.code.as_deref(), Some("E0000001"));
        assert_eq!(
            e.summary,
            "Api validation failed: name (name: An object with this field already exists in the current organization)"
        );
        assert_eq!(
            e.to_string(),
            format!("Okta answered 400 (E0000001): {}", e.summary)
        );
        let any: anyhow::Error = anyhow::Error::new(e.clone()).context("creating a group");
        assert!(is_already_exists(&any));
        assert!(!is_ambiguous(&any));
        let oauth = parse_error(
            Some(400),
            r#"{"error":"invalid_scope","error_description":"The requested scope is invalid."}"#,
        );
        assert_eq!(oauth.code.as_deref(), Some("invalid_scope"));
        assert_eq!(oauth.summary, "The requested scope is invalid.");
        let html = parse_error(Some(502), "<html>Bad Gateway</html>");
        assert_eq!(html.code, None);
        assert_eq!(html.summary, "<html>Bad Gateway</html>");
        assert!(html.is_ambiguous());
        assert_eq!(parse_error(Some(500), "").summary, "no details");
    }

    #[test]
    fn rules_and_groups_are_read_from_okta_shapes() {
        let g = group_from(&json!({"id": "00g1", "type": "OKTA_GROUP",
            "profile": {"name": "aws#acme#Admin#1", "description": "d"}}))
        .unwrap();
        assert_eq!(g.name, "aws#acme#Admin#1");
        assert!(group_from(&json!({"id": "00g1"})).is_err());
        let body = rule_body(
            None,
            "r",
            "isMemberOfAnyGroup(\"00g1\")",
            &["00g2".to_string()],
        );
        assert!(body.get("id").is_none());
        let mut answer = body.clone();
        answer["id"] = json!("0pr1");
        answer["status"] = json!("INACTIVE");
        let r = rule_from(&answer).unwrap();
        assert_eq!(r.status, "INACTIVE");
        assert_eq!(r.expression, "isMemberOfAnyGroup(\"00g1\")");
        assert_eq!(r.group_ids, vec!["00g2".to_string()]);
        assert_eq!(rule_body(Some("0pr1"), "r", "e", &[])["id"], "0pr1");
    }
}
