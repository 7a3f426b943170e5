/** The storage conformance suite against the file driver (no snapshots: those cases assert STORE_UNSUPPORTED). */
import { FileStorageDriver } from '../../src/store/file/file-storage-driver.js';
import { directoryFixture } from './conformance/directory-fixture.js';
import { defineStorageConformance } from './conformance/storage-conformance.js';

defineStorageConformance('file', directoryFixture('dl-conf-file-', (dir) => Promise.resolve(new FileStorageDriver({ dataDir: dir }))));
