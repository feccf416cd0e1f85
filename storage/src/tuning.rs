//! How each store tunes RocksDB, and why: the block cache, partitioned
//! indexes and filters, hashed data blocks, memtables and background
//! writes. Every choice here was measured (docs/benchmarks.md); the store
//! itself (store.rs) only opens the engine with what this returns.

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DataBlockIndexType, MemtableFactory, Options,
};

use crate::schema::{META_CF, Schema};
use crate::store::StoreOptions;

/// Memtable cap of write-mostly tables (see [`Schema::write_mostly`]),
/// which bounds what a read of their unsorted memtable costs.
const WRITE_MOSTLY_BUFFER_BYTES: usize = 16 << 20;
/// How much of a flushed or compacted file may wait in the page cache.
const SYNC_EVERY_BYTES: u64 = 1 << 20;

/// The engine's options and one descriptor per table of `schema`.
pub(crate) fn engine_options(schema: &Schema, options: &StoreOptions) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let cache = Cache::new_lru_cache(options.block_cache_bytes);
    let mut table_opts = BlockBasedOptions::default();
    table_opts.set_block_cache(&cache);
    table_opts.set_bloom_filter(10.0, false);
    table_opts.set_cache_index_and_filter_blocks(true);
    table_opts.set_pin_l0_filter_and_index_blocks_in_cache(true);
    // Index and filter in 4 KiB partitions under a small pinned top
    // level: a look-up reads the one partition its key falls in. With
    // one index and one filter block per file, a Zibo-size store's
    // files carry blocks of megabytes; once the block cache could not
    // hold them all, every miss read and checksummed megabytes again
    // (a feed refresh fell from 55,000 to 5,500 records/s, its CPU in
    // XXH3 and pread; docs/benchmarks.md).
    table_opts.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table_opts.set_partition_filters(true);
    table_opts.set_metadata_block_size(4096);
    table_opts.set_pin_top_level_index_and_filter(true);
    table_opts.set_cache_index_and_filter_blocks_with_high_priority(true);
    // Point reads (every person look-up, a MultiGet of thousands per
    // intake chunk) find their key's restart interval in a data block
    // through a small hash table instead of a binary search, then scan
    // the interval: 4 entries instead of RocksDB's 16, each a cache miss
    // in a block of person records. Searching the block was 40 % of a
    // look-up's time; keys lose some prefix compression (~3 % larger).
    table_opts.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    table_opts.set_data_block_hash_ratio(0.75);
    table_opts.set_block_restart_interval(4);
    let cf_options = |name: &str| {
        let mut o = Options::default();
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_block_based_table_factory(&table_opts);
        o.set_write_buffer_size(options.write_buffer_bytes);
        if schema.is_write_mostly(name) {
            o.set_memtable_factory(MemtableFactory::Vector);
            // A read of the live memtable sorts a copy of it: about
            // 50 ms for the ~150,000 audit index keys of 16 MiB.
            o.set_write_buffer_size(options.write_buffer_bytes.min(WRITE_MOSTLY_BUFFER_BYTES));
            // What they hold is keyed pseudonyms: random bytes (or hex)
            // that LZ4, which finds repeats but does no entropy coding,
            // cannot shrink; compressing them only cost CPU at every
            // flush and compaction (3 % of an export's, profiled).
            o.set_compression_type(DBCompressionType::None);
        }
        o
    };
    let mut db_opts = cf_options(META_CF);
    db_opts.create_if_missing(true);
    db_opts.create_missing_column_families(true);
    db_opts.set_paranoid_checks(true);
    db_opts.increase_parallelism(2);
    db_opts.set_max_background_jobs(2);
    db_opts.set_keep_log_file_num(5);
    // Flushes and compactions hand their files to the disk a megabyte
    // at a time instead of in one fsync at the end: a 30 MiB flush
    // synced at once queued the audit log's WAL fsyncs behind it for
    // 30-60 ms, the open-loop person query's p99.9.
    db_opts.set_bytes_per_sync(SYNC_EVERY_BYTES);
    // Commits are serialised by `commit_lock` anyway, and a vector
    // memtable (write-mostly tables) cannot take concurrent writes.
    db_opts.set_allow_concurrent_memtable_write(false);
    let descriptors = schema
        .column_families()
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
    (db_opts, descriptors.collect())
}
