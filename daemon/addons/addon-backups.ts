import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import type { Logger } from '../log.js';
import { RackError } from '../rack-error.js';
import type { DockerRuntime } from '../runtime/docker-runtime.js';
import type { ExecStreams } from '../runtime/docker-services.js';
import type { AddonRecord, BackupRecord, BackupTrigger } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { UserOutput } from '../user-output.js';
import { KINDS } from './addon-kinds.js';
import type { Addons } from './addons.js';

/** How often the schedule looks for add-ons due a backup; a day's interval is checked hourly. */
const MAX_CHECK_MS = 3600_000;
/** Copies taken before a restore or an import kept per add-on (the newest): enough to undo the last few. */
const SAFETY_KEEP = 3;

export interface BackupSettings {
  dir: string;
  intervalMs: number;
  /** Scheduled backups kept per add-on. */
  keep: number;
  /**
   * How long one backup, restore, import or export may run: then its tool is killed in the
   * container and the add-on's lock is free again, so one stuck service costs the schedule this
   * much at most and the other add-ons still get their backups.
   */
  deadlineMs: number;
}

/**
 * Backups of add-ons as files (`DIR/ADDON/bN.pgdump|rdb`, 0600, in a 0700 folder) with a record
 * each: by hand, daily, before a restore and before a destroy. A backup is written beside its final
 * name and renamed once complete and checked, so a crash never leaves a half file under a backup's
 * name. Restores, imports and exports stream through the service's own tools (pg_dump, an RDB).
 */
export class AddonBackups {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly runtime: DockerRuntime,
    private readonly addons: Addons,
    private readonly settings: BackupSettings,
    private readonly log: Logger,
  ) {}

  /** `addons:backup`, and the backups rack takes itself. The caller holds the add-on's lock. */
  async backupLocked(addon: AddonRecord, trigger: BackupTrigger, createdBy: string): Promise<BackupRecord> {
    const kind = KINDS[addon.kind];
    const folder = join(this.settings.dir, addon.name);
    await mkdir(this.settings.dir, { recursive: true, mode: 0o700 });
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const n = await this.store.addons.nextBackupNumber(addon.name);
    const id = `b${n}`;
    const file = `${id}.${kind.backupExtension}`;
    const partial = join(folder, `.${file}.partial`);
    const errors = new Tail();
    try {
      const sink = createWriteStream(partial, { mode: 0o600 });
      // From its creation: a folder it cannot write to fails this backup, not the daemon.
      let sinkError: Error | undefined;
      sink.on('error', (err) => (sinkError ??= err));
      let code: number;
      try {
        code = await this.runtime.services.exec(addon.name, ['rack-addon-backup'], { stdout: sink, stderr: errors, deadlineMs: this.settings.deadlineMs });
      } finally {
        await new Promise<void>((resolve) => sink.end(() => resolve()));
        sink.destroy();
      }
      if (sinkError) throw new RackError('addon_failed', `the backup of ${addon.name} could not be written: ${sinkError.message}`);
      if (code !== 0) throw new RackError('addon_failed', `the backup of ${addon.name} failed: ${errors.text() || `status ${code}`}`);
      await assertMagic(partial, kind.backupMagic, `the backup of ${addon.name} is not a ${addon.kind} backup`);
      const handle = await open(partial, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(partial, join(folder, file));
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    const bytes = (await stat(join(folder, file))).size;
    const record: BackupRecord = { addon: addon.name, id, kind: addon.kind, file, bytes, trigger, createdAt: new Date().toISOString(), createdBy };
    await this.store.addons.putBackup(record);
    return record;
  }

  backup(name: string, createdBy: string): Promise<BackupRecord> {
    return this.addons.lock.run(name, async () => this.backupLocked(await this.addons.require(name), 'manual', createdBy));
  }

  list(name: string): Promise<BackupRecord[]> {
    return this.store.addons.listBackups(name);
  }

  path(record: BackupRecord): string {
    return join(this.settings.dir, record.addon, record.file);
  }

  /**
   * `addons:restore NAME BACKUP`: BACKUP is one of the add-on's (`b3`) or another's (`OTHER:b3`),
   * of the same kind. A backup of the data as it is now is taken first, so a restore can be undone.
   */
  restore(name: string, backup: BackupRecord, createdBy: string, out: UserOutput): Promise<{ safety: BackupRecord }> {
    return this.addons.lock.run(name, async () => {
      const addon = await this.addons.require(name);
      if (backup.kind !== addon.kind) {
        throw new RackError('bad_argument', `${backup.addon}:${backup.id} is a ${backup.kind} backup; ${name} is ${addon.kind}`);
      }
      // Opened before anything changes: a backup whose file is gone is refused here.
      const file = await open(this.path(backup), 'r').catch((err: Error) => {
        throw new RackError('bad_argument', `the file of ${backup.addon}:${backup.id} cannot be read (${err.message.split(':')[0]}); ${name} is unchanged`);
      });
      try {
        const safety = await this.safetyBackup(addon, createdBy, out);
        out.header(`Restoring ${backup.addon}:${backup.id} (${formatBytes(backup.bytes)}) into ${name}`);
        const started = Date.now();
        await this.restoreFrom(addon, file.createReadStream({ autoClose: false }));
        out.detail(`restored in ${seconds(started)}`);
        return { safety };
      } finally {
        await file.close();
      }
    });
  }

  /** `addons:import NAME < dump`: a dump of the add-on's kind on stdin replaces its data (after a safety backup). */
  import(name: string, input: Readable, createdBy: string, out: UserOutput): Promise<{ safety: BackupRecord }> {
    return this.addons.lock.run(name, async () => {
      const addon = await this.addons.require(name);
      const kind = KINDS[addon.kind];
      // Checked before anything changes: the first bytes say what the dump is.
      const head = await readHead(input, kind.backupMagic.length);
      if (head.toString('latin1') !== kind.backupMagic) {
        const what = addon.kind === 'postgres' ? 'a pg_dump custom-format dump (pg_dump -Fc)' : 'an RDB file (redis-cli --rdb)';
        throw new RackError('bad_argument', `that is not ${what}; ${name} is unchanged`);
      }
      const safety = await this.safetyBackup(addon, createdBy, out);
      const whole = new PassThrough();
      whole.write(head);
      input.once('error', (err: Error) => whole.destroy(err));
      input.pipe(whole);
      out.header(`Importing into ${name}`);
      await this.restoreFrom(addon, whole);
      return { safety };
    });
  }

  /** The backup a restore or an import takes first, so that it can be undone. */
  private async safetyBackup(addon: AddonRecord, createdBy: string, out: UserOutput): Promise<BackupRecord> {
    const started = Date.now();
    const safety = await this.backupLocked(addon, 'before-restore', createdBy);
    out.header(`Backed up ${addon.name} as it was: ${safety.id} (${formatBytes(safety.bytes)}, ${seconds(started)})`);
    await this.prune(addon.name, 'before-restore', SAFETY_KEEP);
    return safety;
  }

  /** Removes all but the newest `keep` backups rack took itself for one reason. */
  private async prune(name: string, trigger: BackupTrigger, keep: number): Promise<void> {
    const taken = (await this.list(name)).filter((b) => b.trigger === trigger);
    for (const old of taken.slice(keep)) {
      await rm(this.path(old), { force: true });
      await this.store.addons.removeBackup(old);
    }
  }

  /** `addons:export NAME > dump`: a backup streamed to the client, nothing kept. */
  export(name: string, io: Pick<ExecStreams, 'stdout' | 'abort'>): Promise<void> {
    return this.addons.lock.run(name, async () => {
      const addon = await this.addons.require(name);
      const errors = new Tail();
      const code = await this.runtime.services.exec(addon.name, ['rack-addon-backup'], { ...io, stderr: errors, deadlineMs: this.settings.deadlineMs });
      if (code !== 0) throw new RackError('addon_failed', `the export of ${name} failed: ${errors.text() || `status ${code}`}`);
    });
  }

  private async restoreFrom(addon: AddonRecord, input: Readable): Promise<void> {
    const errors = new Tail();
    const code = await this.runtime.services.exec(addon.name, ['rack-addon-restore'], { stdin: input, stdout: errors, stderr: errors, deadlineMs: this.settings.deadlineMs });
    if (code !== 0) throw new RackError('addon_failed', `the restore into ${addon.name} failed: ${errors.text() || `status ${code}`}`);
  }

  /** The final backup of addons:destroy; the add-on's lock is held by the destroy. */
  async finalBackup(addon: AddonRecord, createdBy: string, out: UserOutput): Promise<void> {
    const record = await this.backupLocked(addon, 'before-destroy', createdBy).catch((err: unknown) => {
      throw new RackError('addon_failed', `${RackError.from(err).message}; nothing was removed`, { cause: err });
    });
    out.header(`Final backup ${record.id} (${formatBytes(record.bytes)}) kept in ${this.path(record)}`);
    out.detail(`load it into another add-on with: addons:import NAME < ${record.file}`);
  }

  /** The daily schedule: each add-on gets a backup once its interval has passed since the last one. */
  start(): void {
    const every = Math.min(MAX_CHECK_MS, Math.max(1000, Math.floor(this.settings.intervalMs / 4)));
    const tick = async () => {
      await this.runSchedule().catch((err: unknown) => this.log.error({ err: String(err) }, 'scheduled backups failed'));
      if (!this.stopped) this.timer = setTimeout(() => void tick(), every);
    };
    this.timer = setTimeout(() => void tick(), every);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** When the add-on's next scheduled backup is due. */
  nextScheduled(addon: AddonRecord): Date {
    return new Date(Date.parse(addon.lastDailyBackupAt ?? addon.createdAt) + this.settings.intervalMs);
  }

  private async runSchedule(): Promise<void> {
    for (const addon of await this.addons.list()) {
      if (this.stopped || addon.destroying || this.nextScheduled(addon).getTime() > Date.now()) continue;
      // Busy (a restore, an export): not waited for; its backup is taken at a later round.
      if (this.addons.lock.busy(addon.name)) continue;
      try {
        await this.addons.lock.run(addon.name, async () => {
          const current = await this.store.addons.get(addon.name);
          if (!current || current.destroying) return;
          const record = await this.backupLocked(current, 'daily', 'rack');
          await this.store.addons.update(addon.name, (r) => ({ ...r, lastDailyBackupAt: record.createdAt }));
          await this.prune(addon.name, 'daily', this.settings.keep);
          this.log.info({ addon: addon.name, backup: record.id, bytes: record.bytes }, 'scheduled backup taken');
        });
      } catch (err) {
        this.log.error({ addon: addon.name, err: String(err) }, 'scheduled backup failed');
      }
    }
  }
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

async function assertMagic(file: string, magic: string, message: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(magic.length);
    const { bytesRead } = await handle.read(buf, 0, magic.length, 0);
    if (bytesRead < magic.length || buf.toString('latin1') !== magic) throw new RackError('addon_failed', message);
  } finally {
    await handle.close();
  }
}

/** The first `n` bytes of a stream (fewer if it ends sooner); the stream is left paused after them. */
function readHead(input: Readable, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = () => {
      input.off('data', onData);
      input.off('end', done);
      input.off('error', failed);
      input.pause();
      const rest = head.subarray(n);
      if (rest.length > 0) input.unshift(rest);
      resolve(head.subarray(0, n));
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length >= n) done();
    };
    const failed = (err: Error) => {
      input.off('data', onData);
      input.off('end', done);
      reject(err);
    };
    input.on('data', onData);
    input.once('end', done);
    input.once('error', failed);
  });
}

/** The last lines a tool printed, for the one-line error (at most 4 KiB kept). */
class Tail extends Writable {
  private kept = '';

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.kept = (this.kept + chunk.toString('utf8')).slice(-4096);
    done();
  }

  text(): string {
    const lines = this.kept.trim().split('\n').filter((l) => l.trim() !== '');
    return lines.slice(-2).join('; ').slice(0, 300);
  }
}
