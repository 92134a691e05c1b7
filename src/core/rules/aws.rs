//! Rules `aws.*`: what AWS itself refuses, caught before merge instead of half-way through an
//! apply. Limits from the Organizations and IAM API models (`reference/aws-and-rules.md`).

use super::Violation;
use crate::core::decl::Declarations;
use regex::Regex;
use std::sync::LazyLock;

/// CreateAccount's `Email` pattern, anchored.
static EMAIL_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\s@]+@[^\s@]+\.[^\s@]+$").expect("static regex"));
/// IAM's alias pattern without its look-ahead; the `--` case is checked separately.
static ALIAS_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$").expect("static regex"));
/// Organizations' tag key and value pattern.
static TAG_SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("static regex"));

pub const MAX_TAGS: usize = 50;

/// Whether a tag key or value has Organizations' shape: [`TAG_SHAPE`], decided without the
/// regex for ASCII text (nearly every tag), where its classes are letters, digits and space.
fn tag_shaped(s: &str) -> bool {
    match s.is_ascii() {
        true => s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _.:/=+-@".contains(&b)),
        false => TAG_SHAPE.is_match(s),
    }
}

pub(super) fn check_aws_limits(decls: &Declarations, out: &mut Vec<Violation>) {
    for a in &decls.accounts {
        let module = &a.key;
        if let (Some(name), Some(f)) = (a.name(), &a.name)
            && let Some(why) = account_name_problem(name)
        {
            out.push(Violation::error(
                "aws.account-name",
                &f.at,
                module,
                format!("account name `{name}` {why}"),
                "use 1 to 50 printable ASCII characters".into(),
            ));
        }
        if let (Some(email), Some(f)) = (a.email(), &a.email)
            && let Some(why) = email_problem(email)
        {
            out.push(Violation::error(
                    "aws.email",
                    &f.at,
                    module,
                    format!("email `{email}` of account `{}` {why}", a.label()),
                    "AWS accepts 6 to 64 ASCII characters with one @ and a domain with a dot; an account created with an invalid email can never be recovered".into(),
                ));
        }
        if let (Some(alias), Some(f)) = (a.alias(), &a.alias)
            && let Some(why) = alias_problem(alias)
        {
            out.push(Violation::error(
                    "aws.alias",
                    &f.at,
                    a.base_key.as_deref().unwrap_or(module),
                    format!("account alias `{alias}` {why}"),
                    "use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit".into(),
                ));
        }
        if let (Some(tags), Some(f)) = (a.tags(), &a.tags)
            && let Some(why) = tags_problem(&tags)
        {
            out.push(Violation::error(
                    "aws.tags",
                    &f.at,
                    a.base_key.as_deref().unwrap_or(module),
                    format!("the tags of account `{}` {why}", a.label()),
                    "AWS refuses the whole CreateAccount for one bad tag: keys 1-128 and values 0-256 characters of letters, digits, spaces and _.:/=+-@, at most 50 tags, no `aws:` prefix".into(),
                ));
        }
    }
}

pub fn account_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if len == 0 {
        return Some("is empty".into());
    }
    if len > 50 {
        return Some(format!("is {len} characters long; AWS allows at most 50"));
    }
    if let Some(c) = name.chars().find(|c| !(' '..='~').contains(c)) {
        return Some(format!("contains {c:?}, which is not printable ASCII"));
    }
    None
}

pub fn email_problem(email: &str) -> Option<String> {
    let len = email.chars().count();
    if !(6..=64).contains(&len) {
        return Some(format!("is {len} characters long; AWS needs 6 to 64"));
    }
    if !email.is_ascii() {
        return Some("is not 7-bit ASCII".into());
    }
    if email.matches('@').count() != 1 || !EMAIL_SHAPE.is_match(email) {
        return Some("is not of the form local@domain.tld".into());
    }
    let (local, domain) = email.split_once('@')?;
    if local.starts_with('.') {
        return Some("has a local part that starts with a dot".into());
    }
    if let Some(c) = local.chars().find(|c| "\"'()<>[]:;,\\|%&".contains(*c)) {
        return Some(format!("has {c:?} in its local part, which AWS refuses"));
    }
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Some(format!("has {c:?} in its domain"));
    }
    if domain.starts_with(['-', '.']) || domain.ends_with(['-', '.']) {
        return Some("has a domain that starts or ends with a hyphen or dot".into());
    }
    None
}

pub fn alias_problem(alias: &str) -> Option<String> {
    let len = alias.chars().count();
    if !(3..=63).contains(&len) {
        return Some(format!("is {len} characters long; IAM needs 3 to 63"));
    }
    if alias.contains("--") {
        return Some("contains `--`; IAM allows only single hyphens".into());
    }
    if !ALIAS_SHAPE.is_match(alias) {
        return Some("may hold only lower-case letters, digits and inner hyphens".into());
    }
    None
}

pub fn tags_problem(tags: &[(&str, &str)]) -> Option<String> {
    if tags.len() > MAX_TAGS {
        return Some(format!(
            "are {} tags; AWS allows at most {MAX_TAGS}",
            tags.len()
        ));
    }
    for &(k, v) in tags {
        let klen = k.chars().count();
        if !(1..=128).contains(&klen) {
            return Some(format!(
                "have a key of {klen} characters (1 to 128 allowed)"
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Some(format!("use the reserved key prefix `aws:` in `{k}`"));
        }
        if !tag_shaped(k) {
            return Some(format!("have key `{k}` with a character AWS refuses"));
        }
        if v.chars().count() > 256 {
            return Some(format!("have a value of `{k}` longer than 256 characters"));
        }
        if !tag_shaped(v) {
            return Some(format!(
                "have a value of `{k}` with a character AWS refuses"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        assert_eq!(account_name_problem("client-example"), None);
        assert_eq!(account_name_problem("Client Example (EU)"), None);
        assert!(account_name_problem("").is_some());
        assert!(account_name_problem(&"x".repeat(51)).is_some());
        assert_eq!(account_name_problem(&"x".repeat(50)), None);
        assert!(account_name_problem("tab\there").is_some());
        assert!(account_name_problem("café").is_some());
    }

    #[test]
    fn emails() {
        assert_eq!(email_problem("aws+client-x@example.com"), None);
        for bad in [
            "a@b.c", // 5 chars
            "no-at-sign.example.com",
            "two@@example.com",
            "a@b@example.com",
            "spa ce@example.com",
            ".dot@example.com",
            "semi;colon@example.com",
            "pct%x@example.com",
            "x@exa_mple.com",
            "x@-example.com",
            "x@example.com.",
            "x@examplecom",
            "ümlaut@example.com",
        ] {
            assert!(email_problem(bad).is_some(), "{bad} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(53));
        assert_eq!(long.len(), 65);
        assert!(email_problem(&long).is_some());
        assert_eq!(email_problem(&long[1..]), None, "64 characters is allowed");
    }

    #[test]
    fn aliases_follow_iam() {
        for good in ["abc", "client-example", "a1-b2-c3", "123"] {
            assert_eq!(alias_problem(good), None, "{good}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "UPPER",
            "under_score",
            "dot.ted",
            &"a".repeat(64),
        ] {
            assert!(alias_problem(bad).is_some(), "{bad} should be refused");
        }
        assert_eq!(alias_problem(&"a".repeat(63)), None);
    }

    #[test]
    fn tags() {
        let mut t = vec![("owner", "team a@example.com"), ("cost-center", "")];
        assert_eq!(tags_problem(&t), None);
        t.push(("aws:created", "x"));
        assert!(tags_problem(&t).unwrap().contains("aws:"));
        t.pop();
        t.push(("bad", "semi;colon"));
        assert!(tags_problem(&t).is_some());
        t.pop();
        let keys: Vec<String> = (0..49).map(|i| format!("k{i}")).collect();
        t.extend(keys.iter().map(|k| (k.as_str(), "v")));
        assert!(tags_problem(&t).unwrap().contains("at most 50"));
    }

    #[test]
    fn the_ascii_tag_shape_is_the_regex() {
        // every ASCII character alone, and around letters, judged both ways
        for b in 0u8..=127 {
            let c = char::from(b);
            for text in [c.to_string(), format!("a{c}b"), format!("{c}{c}1")] {
                assert_eq!(
                    tag_shaped(&text),
                    TAG_SHAPE.is_match(&text),
                    "{text:?} is judged alike"
                );
            }
        }
        for text in ["", "cc 7/1", "team=a+b@x:y_z.-", "Größe", "naïve;", "東京"] {
            assert_eq!(tag_shaped(text), TAG_SHAPE.is_match(text), "{text:?}");
        }
    }
}
