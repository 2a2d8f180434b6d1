//! Signing certificates: self-signed roots and certificates issued by a
//! CA, with a ring key or any [`V2xSigner`].

use super::*;

impl Certificate {
    /// Signs `tbs` as a self-signed root certificate with `key`, which must
    /// be the P-256 key (ring `ECDSA_P256_SHA256_FIXED_SIGNING`) whose public
    /// key is `tbs.verification_key`.
    pub fn sign_root(tbs: ToBeSigned, key: &EcdsaKeyPair) -> Result<Self, V2xError> {
        Self::sign_root_with(tbs, key)
    }

    /// Like [`Certificate::sign_root`] with any [`V2xSigner`] (a key in a
    /// keystore or a PKCS#11 token). The signer's public key must be
    /// `tbs.verification_key`; the new certificate is verified before it
    /// is returned.
    pub fn sign_root_with(tbs: ToBeSigned, signer: &dyn V2xSigner) -> Result<Self, V2xError> {
        if PublicKeyP256::from_sec1(&signer.public_key_sec1())? != tbs.verification_key {
            return Err(V2xError::Signing(
                "root key does not match the certificate's verification key",
            ));
        }
        let cert = Self::sign(
            CertProfile::EtsiTs103097,
            IssuerIdentifier::SelfSigned,
            &tbs,
            signer,
            b"",
        )?;
        cert.verify_signed_by(None).map_err(|_| {
            V2xError::Signing("the signer produced a signature that does not verify")
        })?;
        Ok(cert)
    }

    /// Signs `tbs` with the CA certificate `issuer` and its key `issuer_key`
    /// (ring `ECDSA_P256_SHA256_FIXED_SIGNING`). The issuer must have
    /// `certIssuePermissions` and its verification key must match
    /// `issuer_key`. Permission and validity-period consistency along the
    /// chain are not checked here.
    pub fn issue(
        tbs: ToBeSigned,
        issuer: &Certificate,
        issuer_key: &EcdsaKeyPair,
    ) -> Result<Self, V2xError> {
        Self::issue_with(tbs, issuer, issuer_key)
    }

    /// Like [`Certificate::issue`] with any [`V2xSigner`] holding the
    /// issuer's key. The new certificate is verified against `issuer`
    /// before it is returned.
    pub fn issue_with(
        tbs: ToBeSigned,
        issuer: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        Self::issue_in(CertProfile::EtsiTs103097, tbs, issuer, signer)
    }

    /// Like [`Certificate::issue_with`], checking `tbs` against `profile`
    /// instead of the ETSI profile: with [`CertProfile::Ieee1609Dot2`] it
    /// issues SCMS-style tickets with id `linkageData`
    /// ([`ToBeSigned::linked_authorization_ticket`]). The issuer may be a
    /// certificate of either profile.
    ///
    /// The validity is clamped to the issuer's ([`ValidityPeriod::clamp_to`]:
    /// a certificate never starts before or ends after its issuer), or the
    /// issuance refused with [`V2xError::OutsideIssuerValidity`] when
    /// nothing of it lies within the issuer's validity.
    pub fn issue_in(
        profile: CertProfile,
        mut tbs: ToBeSigned,
        issuer: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        tbs.validity = tbs.validity.clamp_to(&issuer.tbs.validity)?;
        if issuer.tbs.cert_issue_permissions.is_none() {
            return Err(V2xError::IssuerMismatch(
                "issuer has no certIssuePermissions",
            ));
        }
        if PublicKeyP256::from_sec1(&signer.public_key_sec1())? != issuer.tbs.verification_key {
            return Err(V2xError::Signing(
                "issuer key does not match the issuer certificate",
            ));
        }
        let cert = Self::sign(
            profile,
            IssuerIdentifier::Sha256AndDigest(issuer.hashed_id8()),
            &tbs,
            signer,
            issuer.as_coer(),
        )?;
        cert.verify_signed_by(Some(issuer)).map_err(|_| {
            V2xError::Signing("the signer produced a signature that does not verify")
        })?;
        Ok(cert)
    }

    fn sign(
        profile: CertProfile,
        issuer: IssuerIdentifier,
        tbs: &ToBeSigned,
        key: &dyn V2xSigner,
        signer: &[u8],
    ) -> Result<Self, V2xError> {
        let tbs_bytes = tbs.to_coer_in(profile)?;
        let msg = signing_message(&tbs_bytes, signer);
        let sig = key.sign_digest_input(&msg)?;
        let mut signature = EcdsaP256Signature {
            r_form: RSigForm::XOnly,
            r: [0; 32],
            s: [0; 32],
        };
        signature.r.copy_from_slice(&sig[..32]);
        signature.s.copy_from_slice(&sig[32..]);
        let mut w = Writer::new();
        encode_certificate(&mut w, issuer, &tbs_bytes, &signature);
        Self::from_coer_in(profile, &w.buf)
    }
}
