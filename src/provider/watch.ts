/**
 * Watching a tree of folders for the folder providers: one non-recursive fs.watch per
 * folder (Node's recursive watch on Linux loses files replaced by rename, as editors and
 * `sed -i` write them), and every event debounced into one callback.
 */
import { readdirSync, statSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join } from 'node:path';

export class DirWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private timer?: NodeJS.Timeout;
  /** when the first event since the last takeFirstEvent() came (ms), 0: none */
  private firstEventAt = 0;

  /**
   * `debounceMs`: how long the folder must be quiet after an event; `maxDelayMs`: the longest
   * a steady stream of events postpones the reload (as the Kubernetes provider batches its
   * watch events).
   */
  constructor(
    private readonly onChange: () => void,
    private readonly debounceMs = 30,
    private readonly maxDelayMs = 300,
  ) {}

  /** Run onChange once the folder was quiet for debounceMs (at most maxDelayMs after the first event). */
  schedule = (): void => {
    const now = Date.now();
    this.firstEventAt ||= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstEventAt + this.maxDelayMs - now));
    this.timer = setTimeout(this.onChange, wait);
  };

  /** When the first event since the last call came (ms), if any came. */
  takeFirstEvent(): number | undefined {
    const at = this.firstEventAt;
    this.firstEventAt = 0;
    return at || undefined;
  }

  /** Watch exactly these folders (those that exist now); stop watching the others. */
  sync(dirs: Iterable<string>): void {
    const want = new Set(dirs);
    for (const [d, w] of this.watchers) {
      if (!want.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of want) {
      if (this.watchers.has(d)) continue;
      try {
        const w = watch(d, this.schedule);
        w.on('error', () => {
          w.close();
          this.watchers.delete(d);
          this.schedule();
        });
        this.watchers.set(d, w);
      } catch {
        /* vanished between listing and watching: the next reload sees it */
      }
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}

/** Sub-folders of dir (not hidden), sorted; none when dir cannot be read. */
export function safeDirs(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((d) => !d.startsWith('.') && statSync(join(dir, d)).isDirectory())
      .sort();
  } catch {
    return [];
  }
}
