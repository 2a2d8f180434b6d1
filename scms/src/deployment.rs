//! Four authorities in one process, each with its own sled store under its
//! own directory (`ra/`, `pca/`, `la1/`, `la2/`) and its own keys: the
//! small-deployment layout, and what tests and benchmarks drive. Keys here
//! are generated in memory; persistent, encrypted key storage per role is
//! the server's job (`trustca serve --role`).

use std::path::Path;
use std::sync::Arc;

use trustca_pseudonym::{LaId, P256PrivateKey};
use trustca_store::{SledStorage, Storage};
use trustca_v2x::{Certificate, V2xSigner};

use crate::envelope::{LinkKey, random_bytes};
use crate::error::Result;
use crate::linkage_authority::LinkageAuthority;
use crate::profile::TicketProfile;
use crate::pseudonym_ca::PseudonymCa;
use crate::registration::{BatchPolicy, RegistrationAuthority};

/// Salt of the LA–PCA transport keys.
pub const LINK_LABEL: &[u8] = b"trustca-la-pca-link-v1";

/// The four authorities and their stores.
#[derive(Debug)]
pub struct LocalDeployment {
    /// The registration authority.
    pub ra: Arc<RegistrationAuthority>,
    /// The pseudonym CA.
    pub pca: Arc<PseudonymCa>,
    /// Linkage authorities 1 and 2.
    pub linkage: [Arc<LinkageAuthority>; 2],
    /// The stores, in the order ra, pca, la1, la2 (for inspection).
    pub stores: [Arc<dyn Storage>; 4],
}

impl LocalDeployment {
    /// Opens (creating) the four stores under `dir` and wires the
    /// authorities; `pca_signer`/`pca_certificate` are the pseudonym CA's
    /// IEEE 1609.2 key and certificate. Without a CRL signer
    /// ([`LocalDeployment::open_with_crl_signer`]) revocation is refused.
    pub fn open(
        dir: &Path,
        profile: TicketProfile,
        policy: BatchPolicy,
        pca_signer: Arc<dyn V2xSigner + Send + Sync>,
        pca_certificate: Certificate,
    ) -> Result<Self> {
        Self::open_inner(dir, profile, policy, pca_signer, pca_certificate, None)
    }

    /// [`LocalDeployment::open`] with the CRL signer's key and certificate,
    /// which sign the linkage CRL.
    pub fn open_with_crl_signer(
        dir: &Path,
        profile: TicketProfile,
        policy: BatchPolicy,
        pca_signer: Arc<dyn V2xSigner + Send + Sync>,
        pca_certificate: Certificate,
        crl_signer: (Arc<dyn V2xSigner + Send + Sync>, Certificate),
    ) -> Result<Self> {
        Self::open_inner(
            dir,
            profile,
            policy,
            pca_signer,
            pca_certificate,
            Some(crl_signer),
        )
    }

    fn open_inner(
        dir: &Path,
        profile: TicketProfile,
        policy: BatchPolicy,
        pca_signer: Arc<dyn V2xSigner + Send + Sync>,
        pca_certificate: Certificate,
        crl_signer: Option<(Arc<dyn V2xSigner + Send + Sync>, Certificate)>,
    ) -> Result<Self> {
        profile.check_issuable(&pca_certificate)?;
        let open = |name: &str| -> Result<Arc<dyn Storage>> {
            Ok(Arc::new(SledStorage::open(&dir.join(name))?))
        };
        let stores = [open("ra")?, open("pca")?, open("la1")?, open("la2")?];
        let pca_key = P256PrivateKey::generate()?;
        let la_keys = [P256PrivateKey::generate()?, P256PrivateKey::generate()?];
        let pca_pub = pca_key.public_key();
        let ids = [LaId(1), LaId(2)];
        let mut linkage = Vec::with_capacity(2);
        let mut links = Vec::with_capacity(2);
        for (k, key) in la_keys.iter().enumerate() {
            let la_pub = key.public_key();
            let at_la = LinkKey::agree(key, &pca_pub, &la_pub, &pca_pub, LINK_LABEL)?;
            let at_pca = LinkKey::agree(&pca_key, &la_pub, &la_pub, &pca_pub, LINK_LABEL)?;
            let storage_key = LinkKey::from_bytes(&random_bytes()?)?;
            linkage.push(Arc::new(LinkageAuthority::new(
                ids[k],
                stores[2 + k].clone(),
                storage_key,
                at_la,
            )));
            links.push((ids[k], at_pca));
        }
        let mut links = links.into_iter();
        let (Some(l1), Some(l2)) = (links.next(), links.next()) else {
            return Err(crate::ScmsError::Config("two linkage authorities".into()));
        };
        let mut pca = PseudonymCa::new(
            stores[1].clone(),
            pca_signer,
            pca_certificate,
            [l1, l2],
            profile.clone(),
        );
        if let Some((signer, certificate)) = crl_signer {
            pca = pca.with_crl_signer(signer, certificate)?;
        }
        let pca = Arc::new(pca);
        let mut linkage = linkage.into_iter();
        let (Some(la1), Some(la2)) = (linkage.next(), linkage.next()) else {
            return Err(crate::ScmsError::Config("two linkage authorities".into()));
        };
        let ra = Arc::new(RegistrationAuthority::new(
            stores[0].clone(),
            &random_bytes()?,
            [la1.clone(), la2.clone()],
            pca.clone(),
            profile,
            policy,
        )?);
        Ok(Self {
            ra,
            pca,
            linkage: [la1, la2],
            stores,
        })
    }
}
