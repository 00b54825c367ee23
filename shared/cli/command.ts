import type { Config } from '../pipeline/config.ts';
import { loadConfig } from '../pipeline/config.ts';
import { type Settings } from '../events/settings.ts';
import { loadSettings } from '../events/settings-file.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';

/** One `devstats` command: its help (what `devstats <command> --help` and the usage print) and its run. */
export interface Command {
  name: string;
  help: ReadonlyArray<{ synopsis: readonly string[]; summary: readonly string[] }>;
  examples: readonly string[];
  run(args: string[], env: Record<string, string | undefined>, out: (line: string) => void): Promise<number>;
}

/** Opens the configured store for one command, and closes it however the command ends. */
export async function withStore(
  env: Record<string, string | undefined>,
  work: (context: { store: Store; config: Config; settings: Settings }) => Promise<void>,
): Promise<number> {
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  const store = await openStore(config);
  try {
    await work({ store, config, settings });
  } finally {
    await store.close();
  }
  return 0;
}
