//! Answers about devices: their live state (local or from the sector's
//! own database), `GetTrust`, `Decide` and the signed assertions.

use super::*;

/// How many assertions like `signed` the assertion cache holds.
fn assertions_held(signed: &SignedTrustAssertion) -> usize {
    entries_within(signed, MAX_CACHE, MAX_ASSERTION_BYTES)
}

/// How many cached assertions like `signed` fit: `max_entries`, or fewer
/// when that many would pass `max_bytes`. Every entry of a cache shares
/// the responder's one chain, counted once, and has about the same body,
/// so one entry's body and signature stand for all.
pub(crate) fn entries_within(
    signed: &SignedTrustAssertion,
    max_entries: usize,
    max_bytes: usize,
) -> usize {
    // The map entry, the key and the `Arc`'s and buffers' own headers.
    const ENTRY_OVERHEAD: usize = 256;
    let shared = signed.responder_chain.byte_len();
    let each = signed.body.len() + signed.signature.len() + ENTRY_OVERHEAD;
    (max_bytes.saturating_sub(shared) / each).clamp(1, max_entries)
}

impl TrustEngine {
    fn signed_assertion(
        &self,
        urn: &str,
        record: &TrustRecord,
        status: TrustStatus,
        now: OffsetDateTime,
    ) -> Result<(SignedTrustAssertion, OffsetDateTime), TrustDbError> {
        let ttl = time::Duration::try_from(self.cfg.assertion_ttl).unwrap_or(time::Duration::HOUR);
        let refresh = ttl / 4;
        if let Ok(cache) = self.assertions.lock()
            && let Some(c) = cache.get(&record.identity_key)
            && c.version == record.version
            && c.status == status
            && now + refresh < c.next_update
        {
            return Ok((c.signed.clone(), c.next_update));
        }
        let next_update = now + ttl;
        let assertion = TrustAssertion {
            identity: urn.to_owned(),
            sector: SectorName::new(&record.sector)?,
            level: TrustLevel::new(record.level as i64)?,
            status,
            record_version: record.version,
            produced_at: now,
            next_update,
            system_cap: None,
        };
        let signed = SignedTrustAssertion::sign(
            &assertion,
            self.cfg.responder_key.as_ref(),
            &self.cfg.responder_chain,
        )?;
        if let Ok(mut cache) = self.assertions.lock() {
            if cache.len() >= assertions_held(&signed) {
                cache.clear();
            }
            cache.insert(
                record.identity_key.clone(),
                CachedAssertion {
                    version: record.version,
                    status,
                    signed: signed.clone(),
                    next_update,
                },
            );
        }
        Ok((signed, next_update))
    }

    /// The live state of a locally held device (identity key `key`);
    /// `serial` is the certificate presented, whose own revocation also
    /// counts. The store's part is remembered while the store is unchanged
    /// (`standing.rs`); the root's revocation of the sector's CA is asked
    /// every time.
    fn local_state(
        &self,
        identity: &DeviceIdentity,
        key: &str,
        serial: Option<&[u8]>,
        key_fp: Option<&[u8; 32]>,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let stored = self
            .standings
            .get(self.storage.as_ref(), identity, key, serial, key_fp)?;
        let mut status = stored.status;
        let mut notes = stored.notes.clone();
        if let Some(why) = self.issuer_check.get().and_then(|c| c(&identity.sector)) {
            status = TrustStatus::Revoked;
            notes.push(why);
        }
        if let Some(note) = &stored.record_note {
            notes.push(note.clone());
        }
        let record = &stored.record;
        let (assertion, next_update) = self.signed_assertion(&stored.urn, record, status, now)?;
        Ok(LiveState {
            identity: stored.urn.clone(),
            sector: identity.sector.clone(),
            level: TrustLevel::new(record.level as i64)?,
            status,
            version: record.version,
            assertion,
            next_update,
            notes,
        })
    }

    async fn remote_state(
        &self,
        asked: &DeviceIdentity,
        cache_key: Vec<u8>,
        request: msg::GetTrustRequest,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        // The root's revocation of the sector's CA is known here from the
        // ARL; the revoked sector's own database is not asked (and its
        // cached answers are not used).
        // A sector under a foreign root is asked through the root its
        // trust list entry names, and answers for it only while listed.
        let foreign_root = self
            .trust_list()
            .and_then(|l| l.list.root_for(&asked.sector).map(<[u8]>::to_vec));
        if foreign_root.is_none()
            && let Some(why) = self.issuer_check.get().and_then(|c| c(&asked.sector))
        {
            return Err(TrustDbError::IssuerRevoked(why));
        }
        let answer = self
            .ask_peer(asked, foreign_root.as_deref(), cache_key, request)
            .await?;
        let root = foreign_root.as_deref().unwrap_or(&self.cfg.root_der);
        self.checked_answer(asked, root, answer, now)
    }

    /// Forwards `request` about `asked` to the peer database configured
    /// for its sector; `foreign_root` is the listed root its TLS
    /// certificate must chain to when the sector is under another root.
    pub(crate) async fn ask_peer(
        &self,
        asked: &DeviceIdentity,
        foreign_root: Option<&[u8]>,
        cache_key: Vec<u8>,
        request: msg::GetTrustRequest,
    ) -> Result<msg::TrustAnswer, TrustDbError> {
        let sector = &asked.sector;
        let federation = self
            .federation
            .as_ref()
            .filter(|f| f.serves(sector))
            .ok_or_else(|| TrustDbError::Unreachable {
                sector: sector.to_string(),
                reason:
                    "this instance is not authoritative for it and no peer database is configured"
                        .into(),
            })?;
        federation
            .get_trust(sector, foreign_root, cache_key, request)
            .await
    }

    /// Whether a peer database is configured for `sector`.
    pub(crate) fn has_peer(&self, sector: &SectorName) -> bool {
        self.federation.as_ref().is_some_and(|f| f.serves(sector))
    }

    /// The live state a peer database's `answer` about `asked` gives: its
    /// signed assertion must verify to `root` (ours, or the listed root of
    /// a foreign sector) through the sector's own responder, and be about
    /// the device asked.
    pub(crate) fn checked_answer(
        &self,
        asked: &DeviceIdentity,
        root: &[u8],
        answer: msg::TrustAnswer,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let sector = &asked.sector;
        let signed = answer.assertion.ok_or_else(|| TrustDbError::Unreachable {
            sector: sector.to_string(),
            reason: "peer database answered without a signed assertion".into(),
        })?;
        let checked = signed
            .verify_from_sector(root, now, &self.cfg.extension_oid, sector)
            .map_err(|e| TrustDbError::Unreachable {
                sector: sector.to_string(),
                reason: format!("bad answer: {e}"),
            })?;
        // A validly signed answer about another device (a confused or
        // malicious peer, or a replayed answer) must not stand in for the
        // device asked about. Identities compare case-insensitively.
        let about = DeviceIdentity::from_urn(&checked.identity).map(|i| i.key());
        if about.as_ref().ok() != Some(&asked.key()) {
            return Err(TrustDbError::Unreachable {
                sector: sector.to_string(),
                reason: format!(
                    "the answer is about {}, not {}",
                    checked.identity,
                    asked.urn()
                ),
            });
        }
        Ok(LiveState {
            identity: checked.identity,
            sector: checked.sector,
            level: checked.level,
            status: checked.status,
            version: checked.record_version,
            assertion: signed,
            next_update: checked.next_update,
            notes: answer.reasons,
        })
    }

    /// The live state of the device a verified chain names.
    async fn state_for_chain(
        &self,
        chain: &[Vec<u8>],
        peer: &KnownPeer,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let verified = peer.verified.as_ref();
        let (Some(identity), Some(key)) = (&verified.identity, &peer.identity_key) else {
            return Err(TrustDbError::InvalidRequest(
                "certificate names no device (not a long-term device certificate)".into(),
            ));
        };
        if let Some(list) = self.trust_list()
            && list.list.lists_sector(&identity.sector)
        {
            return self
                .foreign_state(&list, chain, identity, verified, now)
                .await;
        }
        if self.is_local(&identity.sector) {
            self.local_state(
                identity,
                key,
                Some(&verified.serial),
                Some(&verified.key_fingerprint),
                now,
            )
        } else {
            let req = msg::GetTrustRequest {
                subject: Some(msg::get_trust_request::Subject::Chain(
                    msg::CertificateChain {
                        certificates: chain.to_vec(),
                    },
                )),
            };
            self.remote_state(identity, verified.fingerprint.to_vec(), req, now)
                .await
        }
    }

    /// `GetTrust`: by chain, fingerprint or identity.
    pub async fn get_trust(
        &self,
        subject: Option<msg::get_trust_request::Subject>,
    ) -> Result<msg::TrustAnswer, TrustDbError> {
        use msg::get_trust_request::Subject;
        let now = OffsetDateTime::now_utc();
        let (state, certificate_level) = match subject {
            None => {
                return Err(TrustDbError::InvalidRequest(
                    "give a certificate chain, a fingerprint or an identity".into(),
                ));
            }
            Some(Subject::Chain(c)) => {
                let peer = self
                    .known_peer(&c.certificates, now)
                    .map_err(TrustDbError::InvalidRequest)?;
                let level = peer
                    .verified
                    .extension
                    .as_ref()
                    .and_then(|e| e.level)
                    .map(|l| l.get() as u32)
                    .unwrap_or(0);
                (
                    self.state_for_chain(&c.certificates, &peer, now).await?,
                    level,
                )
            }
            Some(Subject::Fingerprint(fp)) => {
                let fp: [u8; 32] = fp.as_slice().try_into().map_err(|_| {
                    TrustDbError::InvalidRequest("fingerprint must be 32 bytes (SHA-256)".into())
                })?;
                let serial = self.storage.serial_by_fingerprint(&fp)?.ok_or_else(|| {
                    TrustDbError::NotFound("no certificate with this fingerprint here".into())
                })?;
                let cert = self
                    .storage
                    .certificate(&serial)?
                    .ok_or_else(|| TrustDbError::NotFound("certificate record missing".into()))?;
                let key = cert.identity_key.clone().ok_or_else(|| {
                    TrustDbError::InvalidRequest("certificate is not a device certificate".into())
                })?;
                let device = self
                    .storage
                    .device(&key)?
                    .ok_or_else(|| TrustDbError::NotFound(key.clone()))?;
                let identity = DeviceIdentity::from_urn(&device.urn)?;
                let key = trustca_model::certificate_key_fingerprint(&cert.der).ok();
                (
                    self.local_state(&identity, &identity.key(), Some(&serial), key.as_ref(), now)?,
                    device.certificate_level as u32,
                )
            }
            Some(Subject::Identity(urn)) => {
                let identity = DeviceIdentity::from_urn(&urn)?;
                if self.is_local(&identity.sector) {
                    (
                        self.local_state(&identity, &identity.key(), None, None, now)?,
                        0,
                    )
                } else {
                    let req = msg::GetTrustRequest {
                        subject: Some(Subject::Identity(urn.clone())),
                    };
                    (
                        self.remote_state(&identity, urn.into_bytes(), req, now)
                            .await?,
                        0,
                    )
                }
            }
        };
        Ok(msg::TrustAnswer {
            identity: state.identity,
            sector: state.sector.to_string(),
            certificate_level,
            live_level: state.level.get() as u32,
            status: state.status,
            record_version: state.version,
            reasons: state.notes,
            assertion: Some(state.assertion),
        })
    }

    /// The standing of `Decide`'s caller (the device `identity` of
    /// `caller`), from its own sector's database. Its key and serial were
    /// read from its certificate once per connection (a credential made
    /// elsewhere may lack the key: it is made here then).
    async fn caller_state(
        &self,
        caller: &Credential,
        identity: &DeviceIdentity,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        if self.is_local(&identity.sector) {
            let key = match &caller.identity_key {
                Some(key) => std::borrow::Cow::Borrowed(key.as_str()),
                None => std::borrow::Cow::Owned(identity.key()),
            };
            self.local_state(
                identity,
                &key,
                Some(&caller.serial_octets),
                Some(&caller.key_fingerprint),
                now,
            )
        } else {
            let req = msg::GetTrustRequest {
                subject: Some(msg::get_trust_request::Subject::Identity(identity.urn())),
            };
            self.remote_state(identity, identity.urn().into_bytes(), req, now)
                .await
        }
    }

    /// `Decide`: may `caller` cooperate with the peer of `peer_chain` for
    /// `operation`, and how deeply? Problems with the peer are answered as
    /// a deny with reasons; problems with the request are errors.
    pub async fn decide(
        &self,
        caller: &Credential,
        peer_chain: &[Vec<u8>],
        operation: &str,
    ) -> Result<msg::Decision, TrustDbError> {
        let now = OffsetDateTime::now_utc();
        let policy = self.policy();
        if !policy.knows_operation(operation) {
            return Err(trustca_model::ModelError::UnknownOperation(
                operation.chars().take(80).collect(),
            )
            .into());
        }
        let caller_identity = match (&caller.kind, &caller.identity) {
            (CertificateKind::LongTerm, Some(id)) => id,
            _ => {
                return Err(TrustDbError::PermissionDenied(format!(
                    "Decide is asked by devices with their own certificate; the caller holds {} certificate (use GetTrust)",
                    caller.kind.with_article()
                )));
            }
        };
        let deny = |reason: msg::DecisionReason, peer_sector: String, peer_identity: String| {
            msg::Decision {
                allow: false,
                depth: trustca_model::CooperationDepth::none(),
                required_depth: None,
                caller_level: 0,
                peer_level: 0,
                peer_sector,
                peer_identity,
                rule: String::new(),
                reasons: vec![reason],
                valid_from: now.unix_timestamp(),
                valid_until: now.unix_timestamp(),
                peer_assertion: None,
                policy_version: policy.version(),
                peer_own_level: 0,
                peer_system_cap: None,
                peer_system_assertion: None,
            }
        };
        let caller_state = self.caller_state(caller, caller_identity, now).await;
        // A damaged or tampered record is the store's failure, not the
        // device's standing: DATA_LOSS, never a decision.
        let caller_state = match caller_state {
            Ok(s) => s,
            Err(e) if e.is_data_loss() => return Err(e),
            Err(e) => {
                return Ok(deny(
                    msg::DecisionReason::Caller(e.to_string()),
                    String::new(),
                    String::new(),
                ));
            }
        };
        let peer = match self.known_peer(peer_chain, now) {
            Ok(p) => p,
            Err(reason) => {
                return Ok(deny(
                    msg::DecisionReason::PeerCertificate(reason.to_string()),
                    String::new(),
                    String::new(),
                ));
            }
        };
        let peer_sector = peer
            .verified
            .extension
            .as_ref()
            .map(|e| e.sector.as_str().to_owned())
            .unwrap_or_default();
        let mut peer_state = match self.state_for_chain(peer_chain, &peer, now).await {
            Ok(s) => s,
            Err(e) if e.is_data_loss() => return Err(e),
            Err(e) => {
                return Ok(deny(
                    msg::DecisionReason::Peer(e.to_string()),
                    peer_sector,
                    String::new(),
                ));
            }
        };
        // A member of a system of linked devices is judged at its
        // effective level there, from the live records (crate::systems).
        let peer_own_level = peer_state.level.get() as u32;
        let peer_system = self.apply_system_cap(&mut peer_state, peer.identity_key.as_deref())?;
        fn side(s: &LiveState) -> Standing<'_> {
            Standing {
                sector: &s.sector,
                level: s.level,
                status: s.status,
                notes: &s.notes,
            }
        }
        let outcome = policy.decide_standing(side(&caller_state), side(&peer_state), operation)?;
        let ttl =
            time::Duration::try_from(self.cfg.decision_ttl).unwrap_or(time::Duration::MINUTE * 5);
        let valid_until = (now + ttl)
            .min(peer_state.next_update)
            .min(caller_state.next_update);
        Ok(msg::Decision {
            allow: outcome.allow,
            depth: outcome.depth,
            required_depth: outcome.required_depth,
            caller_level: outcome.caller_level.map(|l| l.get() as u32).unwrap_or(0),
            peer_level: outcome.peer_level.map(|l| l.get() as u32).unwrap_or(0),
            peer_sector,
            peer_identity: peer_state.identity,
            rule: outcome.rule.unwrap_or_default(),
            reasons: outcome
                .reasons
                .into_iter()
                .map(msg::DecisionReason::Policy)
                .collect(),
            valid_from: now.unix_timestamp(),
            valid_until: valid_until.unix_timestamp(),
            peer_assertion: Some(peer_state.assertion),
            policy_version: policy.version(),
            peer_own_level,
            peer_system_cap: peer_system.as_ref().map(|s| s.cap.clone()),
            peer_system_assertion: peer_system.map(|s| s.assertion),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(body_bytes: usize, chain_bytes: usize) -> SignedTrustAssertion {
        SignedTrustAssertion {
            body: vec![0; body_bytes].into(),
            signature: vec![0; 72].into(),
            responder_chain: vec![
                vec![0; chain_bytes / 2],
                vec![0; chain_bytes - chain_bytes / 2],
            ]
            .into(),
        }
    }

    #[test]
    fn the_assertion_cache_is_bounded_in_bytes_and_entries() {
        // With a real body the bytes bound comes first.
        let held = assertions_held(&signed(300, 1_500));
        assert!(held < MAX_CACHE, "{held}");
        assert!(held * (300 + 72) + 1_500 <= MAX_ASSERTION_BYTES);
        assert!(
            held > 10_000,
            "a hot set of 10,000 devices still fits: {held}"
        );
        // The shared responder chain is counted once, not per entry: a
        // chain ten times longer costs the cache a few entries, not nine
        // tenths of them.
        let long_chain = assertions_held(&signed(300, 15_000));
        assert!(long_chain < held);
        assert!(long_chain > held - 50, "{long_chain} of {held}");
        // Bigger bodies, fewer of them; never none.
        assert!(assertions_held(&signed(3_000, 1_500)) < held / 5);
        assert_eq!(assertions_held(&signed(MAX_ASSERTION_BYTES, 1_500)), 1);
        assert_eq!(assertions_held(&signed(300, MAX_ASSERTION_BYTES)), 1);
    }
}
