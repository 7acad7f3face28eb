import { MemoryStore } from '../../server/store/MemoryStore.js';
import { storeContract } from './contract.js';

storeContract('MemoryStore', async () => new MemoryStore());
