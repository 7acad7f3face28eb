/**
 * deploy/README.md, the operator's guide: linked from the main README's Deployment section, and
 * every link in it points at a file of the repository (and, into a Markdown file, at one of its
 * headings), never outside.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { readRepoFile, repoPath } from './deployFiles.js';

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
      const file = resolve(dirname(repoPath('deploy/README.md')), path);
      expect(relative(root, file), target).to.not.match(/^\.\./);
      expect(existsSync(file), target).to.equal(true);
      if (anchor !== undefined) expect(anchorsOf(readRepoFile(relative(root, file))).has(anchor), target).to.equal(true);
    }
  });
});
