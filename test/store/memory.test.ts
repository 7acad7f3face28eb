import { MemoryStore } from '../../server/store/MemoryStore.js';
import { storeContract } from './contract.js';

// Sweeping on every write makes the contract see what a later sweep would drop.
storeContract('MemoryStore', async () => new MemoryStore({ tokenSweepIntervalMs: 0 }));
