// spec.mjs - checks a request against Daytona's published specs: the API's
// OpenAPI 3 document and the toolbox's Swagger 2 document.
//
// loadSpecs(dir).check(which, method, path, searchParams, body, hasBody)
// returns the problems of a request (an empty list when the request is as the spec
// says): no such path or method, a required path, query or body parameter
// missing, a value of the wrong type or outside its enum, a body field the
// schema does not have.  which: "api" or "toolbox".  checkAnswer(which,
// method, path, status, body) does the same for a JSON answer, against the
// schema the spec gives for its status.
//
// The YAML parser is the npm package "yaml", found in the node_modules of
// DAYTONA_NODE_DIR (where the tests install package.json's dependencies),
// else next to this file.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.env.DAYTONA_NODE_DIR || here, 'package.json'));
const YAML = require('yaml');

function compile(doc) {
  const ops = [];
  for (const [p, item] of Object.entries(doc.paths || {})) {
    const names = [];
    const re = new RegExp('^' + p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, n) => {
      names.push(n);
      return '([^/]+)';
    }) + '$');
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete', 'head'].includes(method)) continue;
      ops.push({ path: p, re, names, method: method.toUpperCase(), op, shared: item.parameters || [] });
    }
  }
  // literal paths before templated ones
  ops.sort((a, b) => a.names.length - b.names.length);
  return ops;
}

function resolver(doc) {
  return (schema) => {
    let s = schema;
    for (let i = 0; s && s.$ref && i < 20; i++)
      s = s.$ref.slice(2).split('/').reduce((o, k) => o && o[k], doc);
    return s || {};
  };
}

function typeOk(type, v, nullable) {
  if (v === null) return !!nullable;
  switch (type) {
  case 'string': return typeof v === 'string';
  case 'integer': return Number.isInteger(v);
  case 'number': return typeof v === 'number';
  case 'boolean': return typeof v === 'boolean';
  case 'array': return Array.isArray(v);
  case 'object': return typeof v === 'object' && !Array.isArray(v);
  default: return true;
  }
}

function validate(resolve, schema, v, where, out) {
  const s = resolve(schema);
  for (const part of s.allOf || []) validate(resolve, part, v, where, out);
  if (s.type && !typeOk(s.type, v, s.nullable || s['x-nullable'])) {
    out.push(`${where} must be ${s.type === 'integer' ? 'an' : 'a'} ${s.type}`);
    return;
  }
  if (s.enum && !s.enum.includes(v)) out.push(`${where} must be one of ${s.enum.join(', ')}`);
  if (Array.isArray(v) && s.items) v.forEach((x, i) => validate(resolve, s.items, x, `${where}[${i}]`, out));
  if (v && typeof v === 'object' && !Array.isArray(v) && (s.properties || s.additionalProperties || s.required)) {
    for (const r of s.required || [])
      if (v[r] === undefined) out.push(`${where}.${r} is required`);
    for (const [k, x] of Object.entries(v)) {
      if (s.properties && s.properties[k]) validate(resolve, s.properties[k], x, `${where}.${k}`, out);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object')
        validate(resolve, s.additionalProperties, x, `${where}.${k}`, out);
      else if (s.properties && !s.additionalProperties) out.push(`${where}.${k} is not in the schema`);
    }
  }
}

// A query value (a string) against its parameter's type.
function queryOk(param, resolve, value) {
  const s = resolve(param.schema || param);
  if (s.type === 'integer') return /^-?\d+$/.test(value);
  if (s.type === 'number') return value !== '' && !Number.isNaN(Number(value));
  if (s.type === 'boolean') return value === 'true' || value === 'false';
  if (s.enum) return s.enum.includes(value);
  return true;
}

export function loadSpecs(dir) {
  const docs = {
    api: YAML.parse(fs.readFileSync(path.join(dir, 'daytona-api-openapi.yaml'), 'utf8')),
    toolbox: YAML.parse(fs.readFileSync(path.join(dir, 'daytona-toolbox-swagger.yaml'), 'utf8')),
  };
  const ops = { api: compile(docs.api), toolbox: compile(docs.toolbox) };
  const resolve = { api: resolver(docs.api), toolbox: resolver(docs.toolbox) };

  // form: the body was multipart/form-data, its parts (name -> Buffer) in body
  function check(which, method, p, query, body, hasBody, headers, form) {
    const candidates = ops[which].filter((o) => o.re.test(p));
    if (!candidates.length) return [`the ${which} spec has no path ${p}`];
    const o = candidates.find((c) => c.method === method);
    if (!o) return [`the ${which} spec has no ${method} ${candidates[0].path}`];
    const out = [];
    const r = resolve[which];
    const params = [...o.shared, ...(o.op.parameters || [])].map(r);
    const m = p.match(o.re);
    for (const param of params) {
      if (param.in === 'path') {
        const i = o.names.indexOf(param.name);
        if (i < 0 || !m[i + 1]) out.push(`path parameter ${param.name} is missing`);
      } else if (param.in === 'query') {
        const v = query.get(param.name);
        if (v === null) {
          if (param.required) out.push(`query parameter ${param.name} is required`);
        } else if (!queryOk(param, r, v)) {
          out.push(`query parameter ${param.name} has the wrong type`);
        }
      } else if (param.in === 'body') {
        if (form) out.push('the body must be JSON, not a form');
        else if (!hasBody && param.required) out.push('a body is required');
        else if (hasBody) validate(r, param.schema, body, 'body', out);
      } else if (param.in === 'formData') {
        if (!form) out.push(`form field ${param.name}: the body must be ${(o.op.consumes || ['multipart/form-data'])[0]}`);
        else if (param.required && body[param.name] === undefined) out.push(`form field ${param.name} is required`);
      }
    }
    if (form && !params.some((x) => x.in === 'formData')) out.push(`${method} ${p} takes no form`);
    if (form) for (const k of Object.keys(body))
      if (!params.some((x) => x.in === 'formData' && x.name === k)) out.push(`form field ${k} is not in the spec`);
    for (const k of query.keys())
      if (!params.some((x) => x.in === 'query' && x.name === k)) out.push(`query parameter ${k} is not in the spec`);
    const rb = o.op.requestBody && r(o.op.requestBody);
    if (rb) {
      const schema = rb.content && (rb.content['application/json'] || Object.values(rb.content)[0]);
      if (!hasBody && rb.required) out.push('a body is required');
      else if (hasBody && schema) validate(r, schema.schema, body, 'body', out);
    }
    return out;
  }
  // The problems of an answer: a JSON body against the schema the spec
  // gives for that status (answers the spec does not describe pass).
  function checkAnswer(which, method, p, status, body) {
    const o = ops[which].find((c) => c.method === method && c.re.test(p));
    const resp = o && o.op.responses && o.op.responses[String(status)];
    if (!resp) return [];
    const r = resolve[which];
    const res = r(resp);
    const schema = res.schema || (res.content && res.content['application/json'] && res.content['application/json'].schema);
    if (!schema || r(schema).type === 'file') return [];
    const out = [];
    validate(r, schema, body, 'answer', out);
    return out;
  }
  return { check, checkAnswer };
}
