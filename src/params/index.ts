/** Public face of the parameter system. */
export { Params, ENV_PREFIX, HOME_PARAMS_FILE, CWD_PARAMS_FILE, type ParamsOptions } from './params'
export { CORE_PARAMS, registerCoreParams, checkTypedParams } from './core'
export { parseParamsFile, readParamsFile, PARAM_KEY } from './file'
export type { ParamDef, ParamSource, ParamValue } from './types'
