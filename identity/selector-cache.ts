// The selector cache: each selector in use by some policy, the identities it selects, and
// who uses it. Identity changes are applied incrementally and reported per selector, so
// policy resolution recomputes only what a new or removed identity touches.
//
// Invariant: a selections set handed out is never mutated afterwards. A change replaces
// the entry's set (copy on write), so callers may keep the set they got as a snapshot.

import type { Identity } from './allocator.js';
import type { LabelSet } from './labels.js';
import type { Selector } from './selector.js';

export interface SelectionChange {
  added: number[];
  removed: number[];
}

export type SelectionChanges = Map<string /* selector key */, SelectionChange>;
export type SelectorCacheListener = (changes: SelectionChanges) => void;

export interface SelectorDump {
  selector: string;
  identities: number[];
  users: string[];
}

interface CachedSelector {
  readonly selector: Selector;
  readonly users: Set<string>;
  selections: ReadonlySet<number>;
}

/** The part of IdentityAllocator the cache follows; lets tests pass a fake. */
export interface IdentitySource {
  list(): Identity[];
  onChange(listener: (added: Identity[], removed: Identity[]) => void): () => void;
}

export class SelectorCache {
  private readonly identities = new Map<number, LabelSet>();
  private readonly selectors = new Map<string, CachedSelector>();
  private readonly listeners = new Set<SelectorCacheListener>();

  constructor(initial: Iterable<Identity> = []) {
    for (const id of initial) this.identities.set(id.id, id.labels);
  }

  /**
   * Seeds the cache with the source's identities and follows its changes. Returns the
   * function that stops following.
   */
  attach(source: IdentitySource): () => void {
    this.updateIdentities(source.list(), []);
    return source.onChange((added, removed) => this.updateIdentities(added, removed));
  }

  /** Registers `user` of `sel` and returns its current selections. */
  addSelector(sel: Selector, user: string): ReadonlySet<number> {
    let c = this.selectors.get(sel.key);
    if (!c) {
      const selections = new Set<number>();
      for (const [id, labels] of this.identities) if (sel.matches(labels)) selections.add(id);
      c = { selector: sel, users: new Set(), selections };
      this.selectors.set(sel.key, c);
    }
    c.users.add(user);
    return c.selections;
  }

  /** Drops `user` of `sel`; the selector leaves the cache with its last user. True when the user was registered. */
  removeSelector(sel: Selector, user: string): boolean {
    const c = this.selectors.get(sel.key);
    if (!c || !c.users.delete(user)) return false;
    if (c.users.size === 0) this.selectors.delete(sel.key);
    return true;
  }

  /** Current selections of a cached selector; empty for one not in the cache. */
  selections(sel: Selector): ReadonlySet<number> {
    return this.selectors.get(sel.key)?.selections ?? EMPTY;
  }

  has(sel: Selector): boolean {
    return this.selectors.has(sel.key);
  }

  users(sel: Selector): ReadonlySet<string> {
    return this.selectors.get(sel.key)?.users ?? EMPTY_USERS;
  }

  /** Labels of a known identity (the cache's own view). */
  labelsOf(id: number): LabelSet | undefined {
    return this.identities.get(id);
  }

  /**
   * Applies identity changes: `removed` first, then `added` (an id in both is re-labelled).
   * Returns, and tells subscribers, only the selectors whose selections changed.
   */
  updateIdentities(added: readonly Identity[], removed: readonly Identity[]): SelectionChanges {
    const changes: SelectionChanges = new Map();
    const next = new Map<string, Set<number>>();
    const writable = (key: string, c: CachedSelector): Set<number> => {
      let s = next.get(key);
      if (!s) {
        s = new Set(c.selections);
        next.set(key, s);
      }
      return s;
    };
    const note = (key: string, id: number, kind: 'added' | 'removed'): void => {
      let ch = changes.get(key);
      if (!ch) {
        ch = { added: [], removed: [] };
        changes.set(key, ch);
      }
      const opposite = kind === 'added' ? ch.removed : ch.added;
      const i = opposite.indexOf(id);
      if (i !== -1) opposite.splice(i, 1);
      else ch[kind].push(id);
    };

    for (const ident of removed) {
      if (!this.identities.delete(ident.id)) continue;
      for (const [key, c] of this.selectors) {
        const cur = next.get(key) ?? c.selections;
        if (cur.has(ident.id)) {
          writable(key, c).delete(ident.id);
          note(key, ident.id, 'removed');
        }
      }
    }
    for (const ident of added) {
      const old = this.identities.get(ident.id);
      this.identities.set(ident.id, ident.labels);
      for (const [key, c] of this.selectors) {
        const cur = next.get(key) ?? c.selections;
        const had = cur.has(ident.id);
        const wants = c.selector.matches(ident.labels);
        if (wants && !had) {
          writable(key, c).add(ident.id);
          note(key, ident.id, 'added');
        } else if (!wants && had && old !== undefined) {
          writable(key, c).delete(ident.id);
          note(key, ident.id, 'removed');
        }
      }
    }
    for (const [key, s] of next) this.selectors.get(key)!.selections = s;
    for (const [key, ch] of changes) {
      if (ch.added.length === 0 && ch.removed.length === 0) changes.delete(key);
      else {
        ch.added.sort((a, b) => a - b);
        ch.removed.sort((a, b) => a - b);
      }
    }
    if (changes.size > 0) {
      for (const l of [...this.listeners]) {
        try {
          l(changes);
        } catch (err) {
          process.emitWarning(`selector cache listener failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return changes;
  }

  subscribe(listener: SelectorCacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every cached selector with its identities and users, sorted (for `policy selectors`). */
  dump(): SelectorDump[] {
    return [...this.selectors.values()]
      .map((c) => ({
        selector: c.selector.key,
        identities: [...c.selections].sort((a, b) => a - b),
        users: [...c.users].sort(),
      }))
      .sort((a, b) => (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0));
  }
}

const EMPTY: ReadonlySet<number> = new Set();
const EMPTY_USERS: ReadonlySet<string> = new Set();
