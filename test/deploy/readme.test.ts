/**
 * deploy/README.md, the operator's guide: linked from the main README's Deployment section, and
 * every link in it points at a file of the repository (and, into a Markdown file, at one of its
 * headings), never outside; its Ports table names every port with the schema's default.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { readRepoFile, repoPath, settingDefault } from './deployFiles.js';

/** GitHub's anchor of a heading: lower case, punctuation but - and _ dropped, spaces as -. */
function anchorOf(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((match) => anchorOf(match[1] as string)));
}

/** Targets of the [text](target) links of a Markdown text. */
function linkTargets(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] as string);
}

describe('deploy: the operator guide', () => {
  it("is linked from the main README's Deployment section", () => {
    const readme = readRepoFile('README.md');
    const start = readme.indexOf('\n## Deployment\n');
    expect(start, 'a Deployment section').to.be.greaterThan(0);
    const next = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, next === -1 ? undefined : next);
    expect(linkTargets(section)).to.include('deploy/README.md');
  });

  it('links only to files and headings of the repository', () => {
    const guide = readRepoFile('deploy/README.md');
    const root = repoPath('');
    const targets = linkTargets(guide);
    expect(targets.length).to.be.greaterThan(5);
    for (const target of targets) {
      expect(target, target).to.not.match(/^[a-z]+:/);
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? repoPath('deploy/README.md') : resolve(dirname(repoPath('deploy/README.md')), path);
      expect(relative(root, file), target).to.not.match(/^\.\./);
      expect(existsSync(file), target).to.equal(true);
      if (anchor !== undefined) expect(anchorsOf(readRepoFile(relative(root, file))).has(anchor), target).to.equal(true);
    }
  });

  it('lists every port to open with its default: the SFU and TURN ports as one per worker, UDP and TCP', () => {
    const guide = readRepoFile('deploy/README.md');
    const start = guide.indexOf('\n## Ports\n');
    expect(start, 'a Ports section').to.be.greaterThan(0);
    const section = guide.slice(start, guide.indexOf('\n## ', start + 1));
    // | `FIRST`..`LAST` (default, ...) | protocol | ..., LAST being a setting or `FIRST + WORKERS - 1`.
    const rows = [
      ...section.matchAll(/^\| `([A-Z_]+)`(?:\.\.`(?:([A-Z_]+)|\1 \+ ([A-Z_]+) - 1)`)? \((\d+)(?:-(\d+))?[^)]*\) \| ([^|]+) \|/gm),
    ];
    const byFirst = new Map(rows.map((match) => [match[1] as string, match]));
    expect([...byFirst.keys()].sort()).to.deep.equal(['METRICS_PORT', 'PORT', 'SFU_PORT', 'TURN_MIN_PORT', 'TURN_PORT', 'TURN_TLS_PORT']);
    for (const [, first, last, , from, to] of rows) {
      expect(Number(from), first).to.equal(settingDefault(first as string));
      if (last !== undefined) expect(Number(to), last).to.equal(settingDefault(last));
    }
    for (const [port, workers] of [
      ['SFU_PORT', 'SFU_WORKERS'],
      ['TURN_PORT', 'TURN_WORKERS'],
    ]) {
      const row = byFirst.get(port as string);
      expect(row?.[3], `${port}: a range over ${workers}`).to.equal(workers);
      expect(row?.[6]?.trim(), port).to.equal('UDP and TCP');
    }
  });
});
