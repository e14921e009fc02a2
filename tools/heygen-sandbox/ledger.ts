import type { LedgerEntry } from './types.js';

/** Every recorded request, in arrival order. Entries are opened on arrival and completed on response. */
export class Ledger {
  #entries: LedgerEntry[] = [];
  #nextSeq = 1;

  open(init: Omit<LedgerEntry, 'seq' | 'status' | 'replayed' | 'fault' | 'authScheme'>): LedgerEntry {
    const entry: LedgerEntry = {
      seq: this.#nextSeq++,
      ...init,
      status: 0,
      replayed: false,
      fault: null,
      authScheme: null,
    };
    this.#entries.push(entry);
    return entry;
  }

  list(): LedgerEntry[] {
    return this.#entries.map((e) => ({ ...e }));
  }

  clear(): void {
    this.#entries = [];
  }
}
