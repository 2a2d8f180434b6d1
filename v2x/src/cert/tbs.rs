//! Building and checking the to-be-signed part of a certificate: the
//! constructors for tickets and CA certificates, the profile rules, and its
//! COER encoding.

use super::*;

impl ToBeSigned {
    /// A to-be-signed certificate with `cracaId` zero, `crlSeries` 0 and
    /// every optional field absent (add permissions before signing).
    pub fn new(
        id: CertificateId,
        validity: ValidityPeriod,
        verification_key: PublicKeyP256,
    ) -> Self {
        Self {
            id,
            craca_id: [0; 3],
            crl_series: 0,
            validity,
            assurance_level: None,
            app_permissions: None,
            cert_issue_permissions: None,
            cert_request_permissions: None,
            encryption_key: None,
            verification_key,
        }
    }

    /// An authorization ticket (pseudonym certificate): id `none`, the
    /// given application permissions.
    pub fn authorization_ticket(
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        app_permissions: Vec<PsidSsp>,
    ) -> Self {
        let mut t = Self::new(CertificateId::None, validity, verification_key);
        t.app_permissions = Some(app_permissions);
        t
    }

    /// An SCMS-style authorization ticket (pseudonym certificate): id
    /// `linkageData`, `cracaId` zero, the given `crlSeries`, assurance
    /// level and application permissions. Valid in the
    /// [`CertProfile::Ieee1609Dot2`] profile only: issue it with
    /// [`Certificate::issue_in`].
    pub fn linked_authorization_ticket(
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        app_permissions: Vec<PsidSsp>,
        assurance: SubjectAssurance,
        linkage: LinkageData,
        crl_series: u16,
    ) -> Self {
        let mut t = Self::new(
            CertificateId::LinkageData(linkage),
            validity,
            verification_key,
        );
        t.app_permissions = Some(app_permissions);
        t.assurance_level = Some(assurance);
        t.crl_series = crl_series;
        t
    }

    /// A CA certificate named `name` with the given issue permissions.
    pub fn ca(
        name: &str,
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        cert_issue_permissions: Vec<PsidGroupPermissions>,
    ) -> Self {
        let mut t = Self::new(
            CertificateId::Name(name.to_owned()),
            validity,
            verification_key,
        );
        t.cert_issue_permissions = Some(cert_issue_permissions);
        t
    }

    /// Checks the IEEE 1609.2 and ETSI TS 103 097 constraints that the
    /// types do not enforce by themselves (the ETSI profile; see
    /// [`ToBeSigned::validate_in`]).
    pub fn validate(&self) -> Result<(), V2xError> {
        self.validate_in(CertProfile::EtsiTs103097)
    }

    /// Checks the IEEE 1609.2 constraints that the types do not enforce by
    /// themselves, and those of `profile`: the ETSI profile rejects id
    /// `linkageData` and a non-zero `cracaId` with [`V2xError::Profile`].
    pub fn validate_in(&self, profile: CertProfile) -> Result<(), V2xError> {
        if let CertificateId::Name(n) = &self.id
            && n.chars().count() > 255
        {
            return Err(V2xError::OutOfRange("Hostname longer than 255 characters"));
        }
        if profile == CertProfile::EtsiTs103097 {
            if matches!(self.id, CertificateId::LinkageData(_)) {
                return Err(V2xError::Profile("id linkageData is forbidden"));
            }
            if matches!(self.id, CertificateId::BinaryId(_)) {
                return Err(V2xError::Profile("id binaryId is forbidden"));
            }
            if self.craca_id != [0; 3] {
                return Err(V2xError::Profile("cracaId must be 000000H"));
            }
            if self.cert_request_permissions.is_some() {
                return Err(V2xError::Profile("certRequestPermissions must be absent"));
            }
        }
        if self.app_permissions.is_none()
            && self.cert_issue_permissions.is_none()
            && self.cert_request_permissions.is_none()
        {
            return Err(V2xError::Profile(
                "appPermissions, certIssuePermissions or certRequestPermissions must be present",
            ));
        }
        for p in self.app_permissions.iter().flatten() {
            if let Some(Ssp::Bitmap(b)) = &p.ssp
                && b.len() > 31
            {
                return Err(V2xError::OutOfRange("BitmapSsp longer than 31 octets"));
            }
        }
        let groups = self.cert_issue_permissions.iter().flatten();
        for g in groups.chain(self.cert_request_permissions.iter().flatten()) {
            if g.ee_type == 0 {
                return Err(V2xError::OutOfRange(
                    "eeType must name at least one end-entity type",
                ));
            }
            if let SubjectPermissions::Explicit(ranges) = &g.subject_permissions {
                for r in ranges {
                    if let Some(SspRange::Bitmap { value, mask }) = &r.ssp_range
                        && !((1..=32).contains(&value.len()) && (1..=32).contains(&mask.len()))
                    {
                        return Err(V2xError::OutOfRange(
                            "bitmapSspRange value and mask must be 1..=32 octets",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The COER encoding of this `ToBeSignedCertificate` (ETSI profile).
    pub fn to_coer(&self) -> Result<Vec<u8>, V2xError> {
        self.to_coer_in(CertProfile::EtsiTs103097)
    }

    /// The COER encoding of this `ToBeSignedCertificate`, after checking
    /// it against `profile`.
    pub fn to_coer_in(&self, profile: CertProfile) -> Result<Vec<u8>, V2xError> {
        self.validate_in(profile)?;
        let mut w = Writer::new();
        encode_tbs(&mut w, self, EeTypeRule::Ieee2022);
        Ok(w.buf)
    }
}
