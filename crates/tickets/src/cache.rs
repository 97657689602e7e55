//! "Get ticket" and "list page" over the shared read cache; the rest of the service never
//! sees a Redis key.
//!
//! Groups: `t:<id>` holds one ticket's JSON; `list` holds the list pages kept (any change to
//! any ticket can move it in or out of the list, so all pages go together).

use bytes::Bytes;
use ticketing_common::{
    CancellationToken,
    cache::{CacheSettings, Loader, ReadCache},
};
use uuid::Uuid;

use crate::domain::Cursor;

const LIST: &str = "list";

/// Page sizes whose first page is cached: the default (100) and the sizes clients ask for
/// (the web pages ask for 20). Any other page, another size or a later page (`before`),
/// reads through: an anonymous client naming pages nobody else asks for fills no cache.
const CACHED_PAGE_SIZES: [i64; 5] = [10, 20, 25, 50, 100];

/// Whether a list page is one ordinary clients share, hence worth caching.
fn cached_page(limit: i64, cursor: Option<Cursor>) -> bool {
    cursor.is_none() && CACHED_PAGE_SIZES.contains(&limit)
}

/// The tickets read cache.
#[derive(Clone, Debug)]
pub struct TicketCache {
    cache: ReadCache,
}

impl TicketCache {
    /// Keys live under `<namespace>:tickets:`.
    pub fn new(
        redis_url: &str,
        namespace_prefix: &str,
        settings: CacheSettings,
    ) -> anyhow::Result<Self> {
        let cache = ReadCache::new(
            "tickets",
            redis_url,
            &format!("{namespace_prefix}:tickets"),
            settings,
        )?;
        Ok(TicketCache { cache })
    }

    /// One ticket's JSON, `None` if there is no such ticket.
    pub async fn ticket(&self, id: Uuid, load: impl Loader) -> anyhow::Result<Option<Bytes>> {
        self.cache.get_or_load(&ticket_group(id), "", load).await
    }

    /// One page of the list's JSON; only [`cached_page`]s go through the cache.
    pub async fn list_page(
        &self,
        limit: i64,
        cursor: Option<Cursor>,
        load: impl Loader,
    ) -> anyhow::Result<Option<Bytes>> {
        if !cached_page(limit, cursor) {
            // Not kept, but identical requests arriving together still make one query.
            let item = match cursor {
                None => format!("{limit}:"),
                Some(Cursor::Before(id)) => format!("{limit}:<{id}"),
                Some(Cursor::After(id)) => format!("{limit}:>{id}"),
            };
            return self.cache.load_uncached(LIST, &item, load).await;
        }
        self.cache.get_or_load(LIST, &limit.to_string(), load).await
    }

    /// A ticket was created: only the list changes.
    pub async fn ticket_added(&self) {
        self.cache.invalidate(&[LIST.to_owned()]).await;
    }

    /// A ticket changed: its own entry and the list.
    pub async fn ticket_changed(&self, id: Uuid) {
        self.cache
            .invalidate(&[ticket_group(id), LIST.to_owned()])
            .await;
    }

    /// Keeps the memory layer honest and retries failed invalidations until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.cache.run(shutdown).await
    }

    /// Whether the cache's Redis answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.cache.ping().await
    }

    /// Whether this replica currently trusts its in-memory copies.
    pub fn memory_active(&self) -> bool {
        self.cache.memory_active()
    }
}

fn ticket_group(id: Uuid) -> String {
    format!("t:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_first_pages_of_common_sizes_are_cached() {
        assert!(cached_page(100, None));
        assert!(cached_page(20, None));
        assert!(!cached_page(21, None));
        assert!(!cached_page(1000, None));
        assert!(!cached_page(20, Some(Cursor::Before(Uuid::now_v7()))));
        assert!(!cached_page(20, Some(Cursor::After(Uuid::now_v7()))));
    }
}
