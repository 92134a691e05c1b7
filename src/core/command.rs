//! Commands in MR comments: a line `/orgvend <command>`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Review the MR again now.
    Plan,
    /// Retry a failed apply (Infrastructure members only).
    Retry,
    /// Apply a merge that landed before applying was turned on (Infrastructure members
    /// only): deliberately, through the same gate.
    Apply,
    /// Read the issue's request again now (in an issue's comments).
    Request,
    /// Show what orgvend understands.
    Help,
    /// `/orgvend <something else>`.
    Unknown(String),
}

/// The first `/orgvend` command in a comment, if any. Quoted lines (`> /orgvend plan`) and
/// code blocks are not commands.
pub fn parse(body: &str) -> Option<Command> {
    let mut in_code = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let Some(rest) = t.strip_prefix("/orgvend") else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
            continue; // `/orgvendx`
        }
        let word = rest
            .split_whitespace()
            .next()
            .unwrap_or("help")
            .to_ascii_lowercase();
        return Some(match word.as_str() {
            "plan" => Command::Plan,
            "retry" => Command::Retry,
            "apply" => Command::Apply,
            "request" => Command::Request,
            "help" => Command::Help,
            other => Command::Unknown(other.chars().take(32).collect()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_on_their_own_line() {
        assert_eq!(parse("/orgvend plan"), Some(Command::Plan));
        assert_eq!(
            parse("Thanks!\n  /orgvend   PLAN please\n"),
            Some(Command::Plan)
        );
        assert_eq!(parse("/orgvend retry"), Some(Command::Retry));
        assert_eq!(parse("/orgvend apply"), Some(Command::Apply));
        assert_eq!(parse("/orgvend request"), Some(Command::Request));
        assert_eq!(parse("/orgvend"), Some(Command::Help));
        assert_eq!(
            parse("/orgvend frobnicate"),
            Some(Command::Unknown("frobnicate".into()))
        );
        assert_eq!(parse("please run /orgvend plan"), None);
        assert_eq!(parse("> /orgvend plan"), None);
        assert_eq!(parse("```\n/orgvend plan\n```"), None);
        assert_eq!(parse("/orgvendplan"), None);
        assert_eq!(parse("LGTM"), None);
    }
}
