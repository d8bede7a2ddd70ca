/**
 * YAML for the Node hosts' files (`--config`, `--appservice`), loaded at the first file read:
 * the `yaml` package is some sixty modules and several megabytes of memory that a server
 * started without such files never needs. Synchronous (its CommonJS build through
 * `createRequire`), so the option parsers stay synchronous.
 */
import { createRequire } from 'node:module';

type YamlModule = typeof import('yaml');
let yaml: YamlModule | undefined;

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule;
  return yaml.parse(text);
}
