//! The cost of one ticket's parts at the pseudonym CA, each measured
//! alone (the `v2x` stage's last figures).

use super::*;

/// Mean microseconds of `f` over `n` calls (after a few untimed ones).
fn per_call(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..n.min(20) {
        f()?;
    }
    let started = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64)
}

/// The parts of one ticket at the pseudonym CA, each alone, µs.
pub(super) fn operations(
    iterations: usize,
    per_ticket_1_thread_us: Option<f64>,
) -> Result<Vec<Figure>> {
    let (pca_cert, pca_key) = hierarchy()?;
    let profile = TicketProfile::default();
    let period = profile
        .period_at(NOW)
        .ok_or_else(|| anyhow!("NOW is before the profile's epoch"))?;
    let cat = Caterpillar::generate()?;
    let cocoon: P256PublicKey = cat.request().cocoon_public_key(period, 0)?;
    let to_v2x = |k: &P256PublicKey| PublicKeyP256::from_sec1(&k.to_sec1_uncompressed());
    let recipient = to_v2x(&cocoon)?;
    let contribution = CaContribution::generate()?;
    let certified = contribution.certify(&cocoon)?;
    let tbs = || -> Result<ToBeSigned> {
        Ok(ToBeSigned::linked_authorization_ticket(
            to_v2x(&certified)?,
            profile.validity(period)?,
            profile.permissions_for(LEVEL)?,
            profile.assurance(LEVEL)?,
            LinkageData {
                i_cert: period as u16,
                linkage_value: [7; 9],
                group_linkage_value: None,
            },
            profile.crl_series,
        ))
    };
    let ticket = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs()?, &pca_cert, &*pca_key)?;
    let n = iterations.max(1);
    let mut figures = Vec::new();
    let mut push = |key: &'static str, label: &str, us: f64, note: &str| {
        figures.push(Figure::new(key, label, us, "µs").note(note));
    };

    let message = [0x5au8; 64];
    let sign_us = per_call(n, || {
        pca_key.sign_digest_input(&message)?;
        Ok(())
    })?;
    push(
        "v2x_op_ecdsa_sign_us",
        "PCA per ticket: ECDSA P-256 sign (ring, V2xSigner)",
        sign_us,
        "the raw signature",
    );
    let issue_us = per_call(n, || {
        Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs()?, &pca_cert, &*pca_key)?;
        Ok(())
    })?;
    push(
        "v2x_op_issue_in_us",
        "PCA per ticket: Certificate::issue_in (TBS, encode, sign, decode, verify)",
        issue_us,
        "includes the sign above and the verify below",
    );
    let verify_us = per_call(n, || {
        ticket.verify_signed_by(Some(&pca_cert))?;
        Ok(())
    })?;
    push(
        "v2x_op_verify_us",
        "  of which verify_signed_by (issue_in checks its own signature)",
        verify_us,
        "ECDSA verify + issuer key decompression",
    );
    let plaintext = [0u8; RESPONSE_PLAINTEXT_LEN];
    let seal_us = per_call(n, || {
        EncryptedData::seal_to_response_key(&recipient, &plaintext)?.to_coer();
        Ok(())
    })?;
    push(
        "v2x_op_ecies_seal_us",
        "PCA per ticket: ECIES seal (EncryptedData::seal_to_response_key, 320 B)",
        seal_us,
        "ephemeral key + ECDH + KDF2 + AES-128-CCM + COER",
    );
    let certify_us = per_call(n, || {
        CaContribution::generate()?.certify(&cocoon)?;
        Ok(())
    })?;
    push(
        "v2x_op_certify_us",
        "PCA per ticket: cocoon certify (CaContribution::generate + certify)",
        certify_us,
        "c random, P = B + c·G",
    );
    let conv_us = per_call(n, || {
        to_v2x(&cocoon)?;
        to_v2x(&certified)?;
        Ok(())
    })?;
    push(
        "v2x_op_key_conversions_us",
        "PCA per ticket: two P256PublicKey → PublicKeyP256 conversions",
        conv_us,
        "SEC1 encode + on-curve check",
    );
    // The two pre-linkage values: AES-256-GCM, nonce ‖ 9 + 44 ‖ tag.
    let gcm = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &random32()?).map_err(|_| anyhow!("AES key"))?,
    );
    let nonce = [3u8; NONCE_LEN];
    let mut sealed = vec![0u8; 9 + 44];
    gcm.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(b"aad-la-period"),
        &mut sealed,
    )
    .map_err(|_| anyhow!("AES-GCM seal"))?;
    let gcm_us = per_call(n, || {
        for _ in 0..2 {
            let mut body = sealed.clone();
            gcm.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"aad-la-period"),
                &mut body,
            )
            .map_err(|_| anyhow!("AES-GCM open"))?;
        }
        Ok(())
    })?;
    push(
        "v2x_op_plv_open_us",
        "PCA per ticket: two AES-256-GCM opens of the pre-linkage values",
        gcm_us,
        "ring, 53-byte plaintexts",
    );
    // The store commit share: one create-only commit of a round's records
    // (17-byte key, 96-byte value) with one audit entry, per record.
    let dir = tempfile::tempdir()?;
    let store = SledStorage::open(&dir.path().join("pca"))?;
    let per_commit = ROUND_VEHICLES * ROUND_PERIODS as usize * 20;
    let commits = (n / per_commit).clamp(4, 40);
    let mut next = 0u64;
    let mut spent = Duration::ZERO;
    for _ in 0..commits {
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..per_commit)
            .map(|_| {
                next += 1;
                let mut k = b"t/".to_vec();
                k.extend_from_slice(&[0, 104]);
                k.extend_from_slice(&next.to_be_bytes());
                k.push(0);
                (k, vec![0xa5; 96])
            })
            .collect();
        let audit = BlobAudit {
            actor: "pseudonym-ca".into(),
            kind: "v2x.tickets.issued".into(),
            subject: "mobility".into(),
            detail: format!("{{\"count\":{per_commit}}}"),
            at: NOW,
        };
        let t = Instant::now();
        store.blob_put("v2x.pca", &records, true, Some(&audit))?;
        spent += t.elapsed();
    }
    let store_us = spent.as_secs_f64() * 1e6 / (commits * per_commit) as f64;
    push(
        "v2x_op_store_us",
        "PCA per ticket: share of the PCA's store commit (96-byte record, fsynced)",
        store_us,
        &format!("{commits} commits of {per_commit} records"),
    );
    // The registration authority's and the vehicle's work per ticket.
    let request = cat.request();
    let expand_us = per_call(n, || {
        request.cocoon_public_key(period, 1)?;
        Ok(())
    })?;
    let cocoon_secret = cat.cocoon_private_key(period, 0)?;
    let sealed = EncryptedData::seal_to_response_key(&recipient, &plaintext)?.to_coer();
    let cocoon_us = per_call(n, || {
        cat.cocoon_private_key(period, 0)?;
        Ok(())
    })?;
    let ecies_open_us = per_call(n, || {
        EncryptedData::from_coer(&sealed)?
            .open_with_response_key(&cocoon_secret.to_bytes(), &recipient)?;
        Ok(())
    })?;
    let decode_verify_us = per_call(n, || {
        Certificate::from_coer_in(CertProfile::Ieee1609Dot2, ticket.as_coer())?
            .verify_signed_by(Some(&pca_cert))?;
        Ok(())
    })?;
    let derive_us = per_call(n, || {
        cat.derive_and_check(period, 0, &contribution, &certified)?;
        Ok(())
    })?;
    let mut vehicle = vec![
        Figure::new(
            "v2x_op_ra_expand_us",
            "RA per ticket: cocoon_public_key (B = A + f·G)",
            expand_us,
            "µs",
        ),
        Figure::new(
            "v2x_op_vehicle_cocoon_us",
            "vehicle per ticket: cocoon_private_key (b, and b·G)",
            cocoon_us,
            "µs",
        ),
        Figure::new(
            "v2x_op_vehicle_ecies_open_us",
            "vehicle per ticket: EncryptedData decode + open_with_response_key",
            ecies_open_us,
            "µs",
        )
        .note("p256 variable-base ECDH with the cocoon secret"),
        Figure::new(
            "v2x_op_vehicle_verify_us",
            "vehicle per ticket: ticket decode + verify_signed_by",
            decode_verify_us,
            "µs",
        ),
        Figure::new(
            "v2x_op_vehicle_derive_us",
            "vehicle per ticket: derive_and_check (p, p·G == P)",
            derive_us,
            "µs",
        ),
    ];
    let parts = issue_us + seal_us + certify_us + conv_us + gcm_us + store_us;
    push(
        "v2x_op_parts_sum_us",
        "PCA per ticket: sum of the parts above (issue_in counted once)",
        parts,
        "",
    );
    if let Some(whole) = per_ticket_1_thread_us {
        push(
            "v2x_op_issue_batch_us",
            "PCA per ticket: PseudonymCa::issue_batch, wall time per ticket (every core)",
            whole,
            &format!(
                "parts (each alone, one core) sum to {:.0}% of it: issue_batch runs on every core",
                parts / whole * 100.0
            ),
        );
    }
    figures.append(&mut vehicle);
    Ok(figures)
}
