//! `trustca --help`: the commands grouped by who uses them, instead of
//! clap's one flat list (clap groups arguments under headings, not
//! subcommands).

use clap::Command;

/// The groups of `trustca --help`, in order. Every subcommand is in exactly
/// one (a test holds this, so a new command cannot be left out).
pub(crate) const COMMAND_GROUPS: &[(&str, &[&str])] = &[
    ("Run a CA", &["serve", "init", "policy"]),
    (
        "Key ceremony (offline root, sector operators)",
        &["root", "sector", "ca"],
    ),
    (
        "Credentials (issued offline from the data directory)",
        &[
            "manufacturer",
            "operator",
            "auditor",
            "gateway",
            "certification-body",
        ],
    ),
    (
        "Devices and manufacturers",
        &["enroll", "query", "snapshot", "crl"],
    ),
    (
        "Operators",
        &[
            "trust",
            "revoke",
            "restrict",
            "anomaly",
            "model",
            "system",
            "attestation-root",
            "web",
        ],
    ),
    (
        "Auditors and offline checks",
        &["audit", "store", "inspect", "verify", "verify-answer"],
    ),
    (
        "Vehicles and V2X authorities",
        &["pseudonym", "v2x", "etsi"],
    ),
];

/// The top-level command with its help grouped by [`COMMAND_GROUPS`].
/// Commands missing from the table are listed under "Other commands".
pub fn grouped(cmd: Command) -> Command {
    let width = cmd
        .get_subcommands()
        .map(|s| s.get_name().len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let mut listed = Vec::new();
    for (heading, names) in COMMAND_GROUPS {
        text.push_str(&format!("{heading}:\n"));
        for name in *names {
            if let Some(sub) = cmd.find_subcommand(name) {
                text.push_str(&line(name, sub, width));
                listed.push(*name);
            }
        }
        text.push('\n');
    }
    let others: Vec<_> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !listed.contains(&s.get_name()))
        .map(|s| line(s.get_name(), s, width))
        .collect();
    if !others.is_empty() {
        text.push_str("Other commands:\n");
        text.extend(others);
        text.push('\n');
    }
    text.push_str(&format!(
        "  {:width$}  the help of a command: trustca help COMMAND, or trustca COMMAND --help\n",
        "help"
    ));
    // Braces in the descriptions must not be read as template tags.
    let text = text.replace('{', "{{").replace('}', "}}");
    cmd.help_template(format!(
        "{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{text}\nOptions:\n{{options}}{{after-help}}"
    ))
}

/// Width of the help text (clap's default wrapping width).
const HELP_WIDTH: usize = 100;

/// One command's entry: its name and the part of its description before
/// the first colon (the rest is in the command's own help), wrapped.
fn line(name: &str, sub: &Command, width: usize) -> String {
    let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
    let about = about.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = about
        .split_once(": ")
        .map(|(head, _)| head)
        .unwrap_or(&about);
    let indent = width + 4;
    let mut out = format!("  {name:width$}  ");
    let mut col = indent;
    for word in first.split(' ') {
        if col > indent && col + 1 + word.len() > HELP_WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn every_command_is_in_exactly_one_group() {
        let cmd = Cli::command();
        let grouped: Vec<&str> = COMMAND_GROUPS
            .iter()
            .flat_map(|(_, n)| *n)
            .copied()
            .collect();
        for sub in cmd.get_subcommands() {
            let n = grouped.iter().filter(|g| **g == sub.get_name()).count();
            assert_eq!(n, 1, "`{}` is in {n} help groups", sub.get_name());
        }
        for name in grouped {
            assert!(cmd.find_subcommand(name).is_some(), "no command {name}");
        }
    }

    #[test]
    fn the_help_lists_every_group_and_no_rarely_used_global() {
        let mut cmd = grouped(Cli::command());
        let help = cmd.render_help().to_string();
        for (heading, names) in COMMAND_GROUPS {
            assert!(help.contains(&format!("{heading}:")), "{help}");
            for name in *names {
                assert!(help.contains(&format!("  {name} ")), "{name}: {help}");
            }
        }
        assert!(!help.contains("Other commands"), "{help}");
        assert!(!help.contains("--extension-oid <OID>"), "{help}");
        let mut serve = Cli::command();
        let serve = serve.find_subcommand_mut("serve").map(|s| s.render_help());
        let serve = serve.map(|h| h.to_string()).unwrap_or_default();
        assert!(!serve.contains("--extension-oid"), "{serve}");
    }
}
