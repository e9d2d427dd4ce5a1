// Package pagestyle holds the style that vw's pages of tables share (the
// relay's /stats, vw stream's status page), so that they look alike and
// change together.
package pagestyle

import (
	"embed"
	"html/template"
)

//go:embed tables.html
var files embed.FS

// Tables adds the template "tables" to t: the shared style rules, for a
// page to call inside its <style> element before its own rules.
func Tables(t *template.Template) *template.Template {
	return template.Must(t.ParseFS(files, "tables.html"))
}
