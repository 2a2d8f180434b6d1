//! Walking a fleet a page at a time: an iterator over every device record
//! under a prefix that holds at most one page of them, so work over a
//! sector or a model (bulk revocation, bulk downgrade, a model's sweep,
//! the console's counts) keeps memory flat at a million devices instead of
//! reading every record into one `Vec`; the same for a sector's
//! revocations and the opaque records of a space ([`KeyedPages`]).

use crate::{DeviceRecord, Storage, StoreError};

/// Device records read per page: about 1,024 × 200 bytes decoded, small
/// beside a sector of a million devices and large enough that the store's
/// per-read cost is shared.
pub const DEVICE_PAGE: usize = 1_024;

/// Every device record whose identity key starts with a prefix, in key
/// order, read [`DEVICE_PAGE`] at a time with [`Storage::devices_page`].
/// A read error ends the walk after it is yielded.
#[derive(Debug)]
pub struct DevicePages<'a, S: Storage + ?Sized> {
    storage: &'a S,
    prefix: String,
    page_size: usize,
    page: std::vec::IntoIter<DeviceRecord>,
    after: Option<String>,
    done: bool,
}

/// Walks the device records under `prefix` a page at a time.
pub fn device_pages<'a, S: Storage + ?Sized>(storage: &'a S, prefix: &str) -> DevicePages<'a, S> {
    device_pages_of(storage, prefix, DEVICE_PAGE)
}

/// [`device_pages`] with a page size of `page_size` (at least 1), for
/// tests that walk more records than a page without writing thousands.
pub fn device_pages_of<'a, S: Storage + ?Sized>(
    storage: &'a S,
    prefix: &str,
    page_size: usize,
) -> DevicePages<'a, S> {
    DevicePages {
        storage,
        prefix: prefix.to_owned(),
        page_size: page_size.max(1),
        page: Vec::new().into_iter(),
        after: None,
        done: false,
    }
}

impl<S: Storage + ?Sized> Iterator for DevicePages<'_, S> {
    type Item = Result<DeviceRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(d) = self.page.next() {
            return Some(Ok(d));
        }
        if self.done {
            return None;
        }
        let page =
            match self
                .storage
                .devices_page(&self.prefix, self.after.as_deref(), self.page_size)
            {
                Ok(page) => page,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
        // A short page is the last; a full one may be followed by more.
        self.done = page.len() < self.page_size;
        self.after = page.last().map(|d| d.identity_key.clone());
        self.page = page.into_iter();
        self.page.next().map(Ok)
    }
}

/// Records read per page by [`revoked_pages`], [`blob_pages`] and the
/// whole-set reads built on them: a page of revocations is about 60 KB, and
/// one query or scan serves a thousand records.
pub const STORE_PAGE: usize = 1_024;

/// Reads the page after a key (`None`: the first), at most so many.
type Fetch<'a, T> = Box<dyn FnMut(Option<&[u8]>, usize) -> Result<Vec<T>, StoreError> + 'a>;

/// Every record of a keyed range, a page at a time: the next page starts
/// after the last key of the one before; a short page is the last. A read
/// error ends the walk after it is yielded.
pub struct KeyedPages<'a, T> {
    fetch: Fetch<'a, T>,
    key_of: fn(&T) -> &[u8],
    page_size: usize,
    page: std::vec::IntoIter<T>,
    after: Option<Vec<u8>>,
    done: bool,
}

impl<T> std::fmt::Debug for KeyedPages<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedPages")
            .field("page_size", &self.page_size)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a, T> KeyedPages<'a, T> {
    fn new(fetch: Fetch<'a, T>, key_of: fn(&T) -> &[u8], page_size: usize) -> Self {
        Self {
            fetch,
            key_of,
            page_size: page_size.max(1),
            page: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }
}

impl<T> Iterator for KeyedPages<'_, T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.page.next() {
            return Some(Ok(item));
        }
        if self.done {
            return None;
        }
        let page = match (self.fetch)(self.after.as_deref(), self.page_size) {
            Ok(page) => page,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        self.done = page.len() < self.page_size;
        self.after = page.last().map(|item| (self.key_of)(item).to_vec());
        self.page = page.into_iter();
        self.page.next().map(Ok)
    }
}

/// A sector's revoked certificates (serial, unix time, reason code) in
/// serial order, `page_size` at a time ([`Storage::revoked_page`]).
pub fn revoked_pages<'a, S: Storage + ?Sized>(
    storage: &'a S,
    sector: &'a str,
    page_size: usize,
) -> KeyedPages<'a, (Vec<u8>, i64, u8)> {
    KeyedPages::new(
        Box::new(move |after, limit| storage.revoked_page(sector, after, limit)),
        |(serial, _, _)| serial,
        page_size,
    )
}

/// The opaque records of `space` under `prefix` in key order, `page_size`
/// at a time ([`Storage::blob_scan_page`]).
pub fn blob_pages<'a, S: Storage + ?Sized>(
    storage: &'a S,
    space: &'a str,
    prefix: &'a [u8],
    page_size: usize,
) -> KeyedPages<'a, crate::KeyValue> {
    KeyedPages::new(
        Box::new(move |after, limit| storage.blob_scan_page(space, prefix, after, limit)),
        |(key, _)| key,
        page_size,
    )
}
