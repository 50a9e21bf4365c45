package manifest

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metavalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/tenantpolicy/purchase-policy-controller/config/crd"
)

// Validator checks objects of the project's kinds as the API server does on
// create: unknown fields (kubectl's strict field validation), defaults, the
// OpenAPI schema, list-map keys, object metadata and the CEL rules, all with
// the API server's own code on the generated CRDs (config/crd/bases). Only
// the transition rules (self == oldSelf) are not checked: there is no old
// object offline.
type Validator struct {
	kinds map[schema.GroupVersionKind]*kindSchema
	group string
}

// kindSchema is what the API server builds from one CRD version.
type kindSchema struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator
	namespaced bool
}

// NewValidator loads the embedded CRDs.
func NewValidator() (*Validator, error) {
	v := &Validator{kinds: map[schema.GroupVersionKind]*kindSchema{}}
	files, err := fs.Glob(crd.Bases, "bases/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := crd.Bases.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var def apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &def); err != nil {
			return nil, fmt.Errorf("embedded CRD %s: %w", f, err)
		}
		if err := v.add(&def); err != nil {
			return nil, fmt.Errorf("embedded CRD %s: %w", f, err)
		}
	}
	return v, nil
}

// add builds the schema of every served version, as the API server's CRD
// handler does.
func (v *Validator) add(def *apiextensionsv1.CustomResourceDefinition) error {
	v.group = def.Spec.Group
	for _, ver := range def.Spec.Versions {
		if !ver.Served || ver.Schema == nil {
			continue
		}
		internal := &apiextensionsinternal.CustomResourceValidation{}
		if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(ver.Schema, internal, nil); err != nil {
			return err
		}
		s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
		if err != nil {
			return err
		}
		s = s.DeepCopy()
		if err := structuraldefaulting.PruneDefaults(s); err != nil {
			return err
		}
		sv, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
		if err != nil {
			return err
		}
		gvk := schema.GroupVersionKind{Group: def.Spec.Group, Version: ver.Name, Kind: def.Spec.Names.Kind}
		v.kinds[gvk] = &kindSchema{structural: s, validator: sv, cel: cel.NewValidator(s, true, celconfig.PerCallLimit),
			namespaced: def.Spec.Scope == apiextensionsv1.NamespaceScoped}
	}
	return nil
}

// Owns tells whether gvk's group is the project's: such a document must be
// one of its kinds.
func (v *Validator) Owns(gvk schema.GroupVersionKind) bool { return gvk.Group == v.group }

// Invalid is a document the API server would refuse.
type Invalid struct {
	Doc Document
	// Err is the API server's error, with its message, for this object.
	Err *apierrors.StatusError
	// Fields are its causes, each at its line.
	Fields Problems
}

func (e *Invalid) Error() string { return e.Fields.Error() }

// Validate checks d's object as a create and returns it defaulted (what the
// API server would store). namespace fills an absent metadata.namespace, as
// kubectl does with the current namespace.
func (v *Validator) Validate(ctx context.Context, d Document, namespace string) (*unstructured.Unstructured, error) {
	obj := d.Object.DeepCopy()
	gvk := obj.GroupVersionKind()
	ks, ok := v.kinds[gvk]
	if !ok {
		return nil, Problem{Source: d.Source, Line: d.Line, Message: fmt.Sprintf("%s is not a kind of %s this version knows (it knows %s)", kindOf(gvk), v.group, strings.Join(v.known(), ", "))}
	}
	if ks.namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace(namespace)
	}
	if unknown := structuralpruning.PruneWithOptions(obj.Object, ks.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
		return nil, v.strictDecoding(d, gvk, unknown)
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj.Object, ks.structural)
	structuraldefaulting.Default(obj.Object, ks.structural)
	if errs := ks.validate(ctx, obj); len(errs) > 0 {
		return nil, v.invalid(d, gvk, obj.GetName(), errs)
	}
	return obj, nil
}

// validate runs the create validation of the API server's custom resource
// strategy (k8s.io/apiextensions-apiserver/pkg/registry/customresource).
func (ks *kindSchema) validate(ctx context.Context, obj *unstructured.Unstructured) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, metavalidation.ValidateObjectMetaAccessor(obj, ks.namespaced, metavalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj.UnstructuredContent(), ks.validator)...)
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, obj.Object, ks.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, ks.structural, obj.Object)...)
	if blocking := blockingErr(errs); blocking != nil {
		return append(errs, blocking)
	}
	celErrs, _ := ks.cel.Validate(ctx, nil, ks.structural, obj.Object, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

// blockingErr is the API server's note when schema errors keep the CEL rules
// from running.
func blockingErr(errs field.ErrorList) *field.Error {
	for _, err := range errs {
		switch err.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong, field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return field.Invalid(nil, nil, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")
		}
	}
	return nil
}

// invalid is the API server's 422 for errs, each cause placed at its line.
func (v *Validator) invalid(d Document, gvk schema.GroupVersionKind, name string, errs field.ErrorList) error {
	out := &Invalid{Doc: d, Err: apierrors.NewInvalid(gvk.GroupKind(), name, errs)}
	for _, e := range errs {
		out.Fields = append(out.Fields, Problem{Source: d.Source, Line: d.LineOf(e.Field), Message: objectName(d, gvk) + ": " + e.Error()})
	}
	return out
}

// strictDecoding is the API server's 400 for unknown fields under kubectl's
// strict field validation.
func (v *Validator) strictDecoding(d Document, gvk schema.GroupVersionKind, unknown []string) error {
	out := &Invalid{Doc: d}
	for _, path := range unknown {
		out.Fields = append(out.Fields, Problem{Source: d.Source, Line: d.LineOf(path),
			Message: fmt.Sprintf("%s: strict decoding error: unknown field %q", objectName(d, gvk), path)})
	}
	return out
}

func (v *Validator) known() []string {
	var out []string
	for gvk := range v.kinds {
		out = append(out, gvk.GroupVersion().String()+" "+gvk.Kind)
	}
	return out
}

func kindOf(gvk schema.GroupVersionKind) string {
	return strings.TrimPrefix(gvk.GroupVersion().String()+" "+gvk.Kind, "/")
}

// objectName is "Kind ns/name" for messages.
func objectName(d Document, gvk schema.GroupVersionKind) string {
	name := d.Object.GetName()
	if ns := d.Object.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return gvk.Kind + " " + name
}
