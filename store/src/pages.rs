//! Walking a fleet a page at a time: an iterator over every device record
//! under a prefix that holds at most one page of them, so work over a
//! sector or a model (bulk revocation, bulk downgrade, a model's sweep,
//! the console's counts) keeps memory flat at a million devices instead of
//! reading every record into one `Vec`.

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
