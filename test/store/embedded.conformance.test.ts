/**
 * The storage conformance suite against the embedded driver, twice: a plain pool with the
 * default extent size, and a mirrored pool with 4 KiB extents (the smallest allowed, so every
 * case also runs where extents are as fine as blocks).
 */
import { join } from 'node:path';
import { EmbeddedStorageDriver } from '../../src/store/embedded/embedded-storage-driver.js';
import { directoryFixture } from './conformance/directory-fixture.js';
import { defineStorageConformance } from './conformance/storage-conformance.js';

defineStorageConformance('embedded', directoryFixture('dl-conf-emb-', (dir) => EmbeddedStorageDriver.open({ pool: join(dir, 'pool') })));

defineStorageConformance('embedded, mirrored, 4 KiB extents', directoryFixture('dl-conf-embm-', (dir) => EmbeddedStorageDriver.open({ pool: join(dir, 'pool'), mirror: join(dir, 'mirror'), extentSize: 4096 })));
