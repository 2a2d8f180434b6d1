//! Finding the policies: a directory given on the command line, the data
//! directory's own copy (written by `init`), or the defaults built into the
//! binary from `policies/`.

use std::path::{Path, PathBuf};
use trustca_datadir::DataDir;

use trustca_model::PolicySet;

use crate::error::{Result, ServerError, io};

/// The default policy files, embedded so a fresh machine needs no files.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("pki.toml", include_str!("../../policies/pki.toml")),
    (
        "cooperation.toml",
        include_str!("../../policies/cooperation.toml"),
    ),
    (
        "recognition.toml",
        include_str!("../../policies/recognition.toml"),
    ),
    (
        "v2x-tickets.toml",
        include_str!("../../policies/v2x-tickets.toml"),
    ),
    (
        "composition.toml",
        include_str!("../../policies/composition.toml"),
    ),
    ("web.toml", include_str!("../../policies/web.toml")),
    (
        "sectors/automotive.toml",
        include_str!("../../policies/sectors/automotive.toml"),
    ),
    (
        "sectors/hems.toml",
        include_str!("../../policies/sectors/hems.toml"),
    ),
    (
        "sectors/healthcare.toml",
        include_str!("../../policies/sectors/healthcare.toml"),
    ),
    (
        "detection/automotive.toml",
        include_str!("../../policies/detection/automotive.toml"),
    ),
    (
        "detection/hems.toml",
        include_str!("../../policies/detection/hems.toml"),
    ),
    (
        "detection/healthcare.toml",
        include_str!("../../policies/detection/healthcare.toml"),
    ),
];

/// Policy files as (relative name, text).
pub type PolicyFiles = Vec<(String, String)>;

/// The files every policy directory has, besides `sectors/*.toml`.
const TOP_FILES: [&str; 3] = ["pki.toml", "cooperation.toml", "recognition.toml"];

/// The files a policy directory may have, besides `detection/*.toml`.
const OPTIONAL_FILES: [&str; 4] = [
    "v2x-tickets.toml",
    "v2x-tickets-etsi.toml",
    "composition.toml",
    "web.toml",
];

/// Reads `pki.toml`, `cooperation.toml`, `recognition.toml`,
/// `sectors/*.toml` and the optional files from `dir`.
pub fn read_dir(dir: &Path) -> Result<PolicyFiles> {
    let mut files = Vec::new();
    for name in TOP_FILES {
        let path = dir.join(name);
        files.push((
            name.to_owned(),
            std::fs::read_to_string(&path)
                .map_err(|e| io(format_args!("cannot read {}", path.display()), e))?,
        ));
    }
    // Optional, each with a default where it is read: the V2X
    // authorities' ticket profiles (`crate::ticket_files`), the
    // composition scheme of systems of linked devices
    // (`composition_text`) and what the web front end shows (`web_text`).
    for name in OPTIONAL_FILES {
        let path = dir.join(name);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| io(format_args!("cannot read {}", path.display()), e))?;
            files.push((name.to_owned(), text));
        }
    }
    // A `pseudonym.toml` left by an older init (the retired X.509
    // pseudonym profile) is not read (`crate::legacy`).
    for sub in ["sectors", "detection"] {
        let folder = dir.join(sub);
        if sub == "detection" && !folder.exists() {
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| io(format_args!("cannot read {}", folder.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        for p in names {
            let name = format!(
                "{sub}/{}",
                p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
            );
            files.push((
                name,
                std::fs::read_to_string(&p)
                    .map_err(|e| io(format_args!("cannot read {}", p.display()), e))?,
            ));
        }
    }
    Ok(files)
}

/// Parses a set of files, naming each error with the file's full path.
pub fn parse(files: &PolicyFiles, base: &str) -> Result<PolicySet> {
    let top = |name: &str| -> Result<(String, &str)> {
        let (_, text) = files
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| ServerError::Policy(format!("no {name} in the policy set")))?;
        Ok((format!("{base}{name}"), text.as_str()))
    };
    let (pki_name, pki_text) = top("pki.toml")?;
    let (coop_name, coop_text) = top("cooperation.toml")?;
    let (recog_name, recog_text) = top("recognition.toml")?;
    let sectors: Vec<(String, String)> = files
        .iter()
        .filter(|(n, _)| n.starts_with("sectors/"))
        .map(|(n, t)| (format!("{base}{n}"), t.clone()))
        .collect();
    if sectors.is_empty() {
        return Err(ServerError::Policy(format!(
            "{base}sectors/ holds no sector policy"
        )));
    }
    let detection: Vec<(String, String)> = files
        .iter()
        .filter(|(n, _)| n.starts_with("detection/"))
        .map(|(n, t)| (format!("{base}{n}"), t.clone()))
        .collect();
    let set = PolicySet::parse(
        (&pki_name, pki_text),
        &sectors,
        (&coop_name, coop_text),
        (&recog_name, recog_text),
        &detection,
    )
    .map_err(|e| ServerError::Policy(e.to_string()))?;
    // composition.toml is checked with the rest (start, `policy check`,
    // reload), against the cooperation and recognition files beside it.
    if let Some((name, text)) = files.iter().find(|(n, _)| n == "composition.toml") {
        trustca_db::composition::CompositionPolicy::parse(
            &format!("{base}{name}"),
            text,
            std::sync::Arc::new(set.trust.clone()),
        )
        .map_err(|e| ServerError::Policy(e.to_string()))?;
    }
    Ok(set)
}

/// The embedded defaults.
pub fn embedded() -> PolicyFiles {
    EMBEDDED
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

/// Picks the policy source: `explicit`, else `DATA/policies`, else the
/// embedded defaults.
pub fn resolve(explicit: Option<&Path>, data: Option<&Path>) -> Result<(PolicyFiles, PolicySet)> {
    let (files, base) = if let Some(dir) = explicit {
        (read_dir(dir)?, format!("{}/", dir.display()))
    } else if let Some(dir) = data
        .map(|d| DataDir::new(d).policies())
        .filter(|d| d.join("pki.toml").exists())
    {
        let base = format!("{}/", dir.display());
        (read_dir(&dir)?, base)
    } else {
        (embedded(), "policies/".to_owned())
    };
    let set = parse(&files, &base)?;
    Ok((files, set))
}

/// Writes the policy files into `DATA/policies` unless a copy exists.
pub fn install(data: &Path, files: &PolicyFiles) -> Result<bool> {
    let dir = DataDir::new(data).policies();
    if dir.join("pki.toml").exists() {
        return Ok(false);
    }
    for sub in ["sectors", "detection"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| io(format_args!("cannot create {}", dir.display()), e))?;
    }
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| io(format_args!("cannot write {}", path.display()), e))?;
    }
    Ok(true)
}

/// `composition.toml` of a policy set, or the embedded default when the
/// directory predates it (a data directory made by an older `init`).
pub fn composition_text(files: &PolicyFiles) -> (&str, String) {
    match files.iter().find(|(n, _)| n == "composition.toml") {
        Some((_, text)) => ("composition.toml", text.clone()),
        None => (
            "composition.toml (built-in default)",
            include_str!("../../policies/composition.toml").to_owned(),
        ),
    }
}

/// `web.toml` of a policy set, or the embedded default when the
/// directory predates it.
pub fn web_text(files: &PolicyFiles) -> (&str, String) {
    match files.iter().find(|(n, _)| n == "web.toml") {
        Some((_, text)) => ("web.toml", text.clone()),
        None => (
            "web.toml (built-in default)",
            include_str!("../../policies/web.toml").to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_is_checked_with_the_rest_of_the_set() {
        let mut files = embedded();
        assert!(parse(&files, "policies/").is_ok());
        for (name, text) in files.iter_mut() {
            if name == "composition.toml" {
                *text = text.replace("control = 0,", "control = 2,");
            }
        }
        let err = parse(&files, "policies/").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("policies/composition.toml") && e.contains("slack")),
            "{err:?}"
        );
    }
}
