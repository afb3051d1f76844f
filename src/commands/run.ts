import { defineCommand } from 'citty'
export default defineCommand({ meta: { name: 'run', description: 'TODO' }, run() { throw new Error('not yet') } })
