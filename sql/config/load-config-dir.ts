import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../../lib/errors.js';
import type { ConfigDocument, ConfigProblem, LoadedConfig } from './config-types.js';

const CONFIG_FILE = /\.(ya?ml|json)$/i;

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    // Hidden folders (.git) and editors' backup files are not config.
    if (entry.name.startsWith('.')) {
      continue;
    }
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      files.push(...(await listFiles(full)));
    } else if (entry.isFile() && CONFIG_FILE.test(entry.name)) {
      files.push(full);
    }
  }

  return files;
}

function parseProblem(file: string, message: string, line?: number): ConfigProblem {
  return { file, kind: '', key: '', field: '', code: 'CDP_CONFIG_PARSE_ERROR', message, line };
}

/** The 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

function parseJson(file: string, text: string): { data?: unknown; problem?: ConfigProblem } {
  try {
    return { data: JSON.parse(text) };
  } catch (err) {
    const message = (err as Error).message;
    // V8 says "... at position 42" or "(line 3 column 5)" depending on the version.
    const lineMatch = /line (\d+)/.exec(message);
    const positionMatch = /position (\d+)/.exec(message);
    const line = lineMatch ? Number(lineMatch[1]) : positionMatch ? lineAt(text, Number(positionMatch[1])) : undefined;

    return { problem: parseProblem(file, `File ${file} is not valid JSON${line ? ` at line ${line}` : ''}`, line) };
  }
}

function parseYaml(file: string, text: string): { data?: unknown; problem?: ConfigProblem } {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  const error = doc.errors[0];
  if (error) {
    const line = error.linePos?.[0].line;
    const reason = error.message.split('\n')[0];

    return { problem: parseProblem(file, `File ${file} is not valid YAML${line ? ` at line ${line}` : ''}: ${reason}`, line) };
  }

  return { data: doc.toJS() };
}

/**
 * Reads every .yml, .yaml and .json file under `dir`, recursively and sorted by path. A file
 * that cannot be parsed becomes a problem rather than an exception, so validation can report
 * it together with everything else.
 */
export async function loadConfigDir(dir: string): Promise<LoadedConfig> {
  const root = path.resolve(dir);
  let stat;
  try {
    stat = await fs.stat(root);
  } catch (err) {
    throw new ConfigError('CDP_CONFIG_DIR_NOT_FOUND', `Config folder ${dir} does not exist`, { cause: err });
  }
  if (!stat.isDirectory()) {
    throw new ConfigError('CDP_CONFIG_DIR_NOT_FOUND', `Config path ${dir} is not a folder`);
  }

  const absolutePaths = (await listFiles(root)).sort();
  // Applying nothing would delete every object: a folder without config files is a mistake (a
  // wrong path), not a wish. An empty roster.yml states that wish explicitly.
  if (absolutePaths.length === 0) {
    throw new ConfigError('CDP_CONFIG_DIR_EMPTY', `Config folder ${dir} holds no .yml, .yaml or .json file; nothing was validated or applied`, {
      details: { dir },
    });
  }
  const documents: ConfigDocument[] = [];
  const problems: ConfigProblem[] = [];
  for (const absolutePath of absolutePaths) {
    const file = path.relative(root, absolutePath).split(path.sep).join('/');
    const text = await fs.readFile(absolutePath, 'utf8');
    const parsed = absolutePath.toLowerCase().endsWith('.json') ? parseJson(file, text) : parseYaml(file, text);
    if (parsed.problem) {
      problems.push(parsed.problem);
      continue;
    }
    // An empty YAML file is an empty document, not an error.
    documents.push({ file, absolutePath, data: parsed.data ?? {} });
  }

  return { dir: root, documents, problems };
}
