//! The pseudonym authority in the server: creating the pseudonym CAs and the
//! resolution authority key at `init`, and at `serve` opening the
//! [`PseudonymAuthority`], publishing its PRLs, scheduling their reissue and
//! building the `Pseudonyms` gRPC service.

use std::path::Path;
use std::sync::Arc;

use trustca_ca::pseudonym_ca;
use trustca_ca::{
    CaHierarchy, Passphrase, PseudonymAuthority, PseudonymPolicy, PseudonymService,
    init_pseudonym_cas,
};
use trustca_model::PolicySet;
use trustca_proto::v1::pseudonyms_server::PseudonymsServer;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::policies::PolicyFiles;

/// Largest pseudonym response (4096 certificates of under 1 KiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The pseudonym policy of a policy set (`pseudonym.toml`, optional).
pub fn pseudonym_policy(files: &PolicyFiles) -> Result<Option<PseudonymPolicy>> {
    files
        .iter()
        .find(|(n, _)| n == "pseudonym.toml")
        .map(|(n, t)| PseudonymPolicy::parse(n, t).map_err(ServerError::from))
        .transpose()
}

/// For `init`: creates the pseudonym CAs and the resolution authority key
/// when the policy enables pseudonyms, and says where the RA key is.
pub(crate) fn init_pseudonyms(
    data: &Path,
    files: &PolicyFiles,
    set: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<trustca_ca::Pkcs11Token>>,
) -> Result<()> {
    let Some(policy) = pseudonym_policy(files)? else {
        return Ok(());
    };
    let report = init_pseudonym_cas(data, set, &policy, passphrase, token)?;
    for s in &report.created_cas {
        eprintln!(
            "created pseudonym CA   {}",
            data.join(format!("ca/{s}-pseudonym.pem")).display()
        );
    }
    if let Some(k) = &report.resolution_authority_key {
        eprintln!(
            "created resolution authority key {} (public key {}).\n\
             MOVE IT OFFLINE NOW: it can name the vehicle behind every pseudonym certificate.\n\
             The CA never needs it; `trustca pseudonym resolve --ra-key` does.",
            k.display(),
            data.join(pseudonym_ca::RA_PUB_FILE).display()
        );
    }
    Ok(())
}

/// For `serve`: loads the pseudonym CAs, publishes their PRLs, schedules
/// reissues and returns the gRPC service.
pub(crate) fn service(
    data: &Path,
    explicit_policies: Option<&Path>,
    set: &PolicySet,
    hierarchy: &CaHierarchy,
    storage: &Arc<dyn Storage>,
    observer: &Arc<dyn trustca_model::observe::Observer>,
) -> Result<PseudonymsServer<PseudonymService>> {
    let (files, _) = crate::policies::resolve(explicit_policies, Some(data))?;
    let policy = pseudonym_policy(&files)?.unwrap_or_default();
    let authority = Arc::new(
        PseudonymAuthority::open(data, set, &policy, hierarchy, Arc::clone(storage))?
            .with_observer(Arc::clone(observer)),
    );
    if let Err(s) = authority.publish_all() {
        // A store served read-only (recovery) cannot allocate PRL numbers;
        // the PRLs already published stay served.
        if storage.write_health() == trustca_store::WriteHealth::Writable {
            return Err(ServerError::Stopped(format!(
                "publishing PRLs: {}",
                s.message()
            )));
        }
        tracing::warn!(reason = %s.message(), "PRLs not republished: the store refuses writes");
    }
    authority.spawn_prl_schedule();
    Ok(PseudonymsServer::new(PseudonymService::new(authority))
        .max_decoding_message_size(crate::serve::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES))
}
